namespace Microsoft.ML.LoRA.Persistence;

/// <summary>
/// How large the entries of a saved model may be when loaded. Sizes are checked twice: the size the zip declares is
/// checked before anything is read, and the bytes actually inflated are counted while reading, which stops one byte
/// past the declared size (declared sizes can lie).
/// </summary>
/// <remarks>
/// <para>
/// Files written since the manifest records every entry (<see cref="LoraModelManifest.Entries"/>): each entry must
/// be exactly the size recorded there and hash to the SHA-256 recorded there. Only the manifest itself has a fixed
/// cap, <see cref="MaxManifestBytes"/>.
/// </para>
/// <para>
/// Older files, whose manifest records no sizes, are held to caps per kind of entry: <see cref="MaxManifestBytes"/>
/// for lora-model.json, <see cref="MaxPipelineBytes"/> for pipeline/before.zip and pipeline/after.zip (read into
/// memory), <see cref="MaxTokenizerFileBytes"/> for each tokenizer/ file (read into memory),
/// <see cref="MaxJsonBytes"/> for the other JSON files (base/config.json, adapter/adapter_config.json), and for
/// weights (adapter/*.safetensors, weights/trained.safetensors, base/ weights), which are written to a scratch
/// folder, <see cref="MaxWeightsInflation"/> times their stored size plus <see cref="WeightsInflationSlackBytes"/>:
/// this library stores weights uncompressed, so they inflate 1:1, and a re-zipped copy about 1.1:1.
/// </para>
/// </remarks>
public static class LoraModelFileLimits
{
    /// <summary>lora-model.json: 64 MiB (any file).</summary>
    public const long MaxManifestBytes = 64L << 20;

    /// <summary>pipeline/before.zip, pipeline/after.zip in files without entry sizes: 256 MiB each.</summary>
    public const long MaxPipelineBytes = 256L << 20;

    /// <summary>Each tokenizer/ file in files without entry sizes: 128 MiB (the largest Hugging Face tokenizer.json files are about 35 MB).</summary>
    public const long MaxTokenizerFileBytes = 128L << 20;

    /// <summary>JSON files outside tokenizer/ (base/config.json, adapter/adapter_config.json) in files without entry sizes: 16 MiB each.</summary>
    public const long MaxJsonBytes = 16L << 20;

    /// <summary>Weights in files without entry sizes inflate to at most this many times their stored size (plus <see cref="WeightsInflationSlackBytes"/>).</summary>
    public const long MaxWeightsInflation = 16;

    /// <summary>What weights may inflate beyond <see cref="MaxWeightsInflation"/> times their stored size: 1 MiB.</summary>
    public const long WeightsInflationSlackBytes = 1L << 20;
}
