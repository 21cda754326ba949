using System.IO.Compression;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tokenization;

namespace Microsoft.ML.LoRA.Persistence;

/// <summary>How to save a pipeline that contains a LoRA classifier.</summary>
public sealed class LoraSaveOptions
{
    /// <summary>Put the base model's weights inside the file, so it loads without the base checkpoint. Default false.</summary>
    public bool EmbedBaseModel { get; set; }

    /// <summary>Store weights with the adapter merged in (self-contained; inference without adapter overhead). Default false.</summary>
    public bool MergeWeights { get; set; }
}

/// <summary>How to load a saved LoRA pipeline.</summary>
public sealed class LoraLoadOptions
{
    /// <summary>Where the base checkpoint is now, if it moved since saving (its weights must still hash the same).</summary>
    public string? BaseModelPath { get; set; }

    /// <summary>How to fetch the base model when it was a Hub id and is not in the cache; null uses the HF_* environment variables.</summary>
    public Microsoft.ML.LoRA.Hub.HubOptions? Hub { get; set; }

    /// <summary>
    /// How the loaded model's matrix products run when it scores, instead of the precision it was saved with: for
    /// example <see cref="ComputePrecision.Int8"/> to score a model trained in fp32 with int8 products. Null (default)
    /// scores as saved.
    /// </summary>
    public ComputePrecision? ScoringPrecision { get; set; }
}

/// <summary>
/// One file that holds a whole fitted pipeline with a LoRA classifier in it. ML.NET's own model format cannot hold
/// third-party transformers (its save internals are not public), so the file is a zip of: the manifest
/// (lora-model.json), ML.NET's own saved models for the stages before and after the LoRA stage
/// (pipeline/before.zip, pipeline/after.zip; before.zip also carries the input schema), the PEFT adapter with the
/// trained head and any module the base checkpoint lacked (adapter/; head-only, last-layers and full fits store their
/// changed weights in weights/trained.safetensors instead), the tokenizer files (tokenizer/), the base config
/// (base/config.json) and, when asked, the base or merged weights (base/). Saves are atomic: a crash mid-save leaves
/// the previous file intact.
/// See docs/persistence.md.
/// </summary>
public static class LoraModelFile
{
    const string ManifestEntry = "lora-model.json";
    const string BeforeEntry = "pipeline/before.zip";
    const string AfterEntry = "pipeline/after.zip";
    const string AdapterFolder = "adapter/";
    const string TrainedWeightsEntry = "weights/" + TrainedWeights.FileName;
    const string TokenizerFolder = "tokenizer/";
    const string BaseFolder = "base/";

    /// <summary>Saves <paramref name="model"/> (a pipeline containing exactly one LoRA classifier) to <paramref name="path"/>.</summary>
    public static void Save(ModelOperationsCatalog catalog, ITransformer model, DataViewSchema inputSchema, string path, LoraSaveOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(inputSchema);
        options ??= new LoraSaveOptions();
        var stages = PipelineStages.Flatten(model).ToList();
        var loraStages = stages.OfType<LoraTextClassificationTransformer>().ToList();
        if (loraStages.Count != 1)
            throw new ArgumentException(loraStages.Count == 0
                ? "The pipeline has no LoraTextClassificationTransformer; save it with mlContext.Model.Save."
                : "The pipeline has more than one LoraTextClassificationTransformer; only one per file is supported.", nameof(model));
        var lora = loraStages[0];
        int at = stages.IndexOf(lora);
        var before = new TransformerChain<ITransformer>(stages.Take(at).ToArray());
        var after = new TransformerChain<ITransformer>(stages.Skip(at + 1).ToArray());
        var loraInput = before.GetOutputSchema(inputSchema);
        var afterInput = lora.GetOutputSchema(loraInput);
        var info = lora.Info;
        var layout = options.MergeWeights ? LoraModelManifest.LayoutMerged
            : options.EmbedBaseModel ? LoraModelManifest.LayoutEmbedded : LoraModelManifest.LayoutAdapter;
        var manifest = LoraModelManifest.Describe(info, layout, stagesBefore: at, stagesAfter: stages.Count - at - 1);

        using var scratch = new ScratchFolder();
        bool isLora = info.FineTuning.IsLora;
        if (isLora) lora.SaveAdapter(Path.Combine(scratch.Path, "adapter"));
        else TrainedWeights.Save(lora.Model, Path.Combine(scratch.Path, TrainedWeights.FileName), info.FineTuning.ToString());
        if (layout == LoraModelManifest.LayoutMerged)
            MergedCheckpoint.Write(lora.Model, info.Labels.Names, Path.Combine(scratch.Path, "merged"));

        AtomicFile.Write(path, stream =>
        {
            using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
            WriteEntry(zip, ManifestEntry, s => JsonSerializer.Serialize(s, manifest, LoraModelManifest.Json), CompressionLevel.Optimal);
            WriteEntry(zip, BeforeEntry, s => catalog.Save(before, inputSchema, s), CompressionLevel.NoCompression);
            WriteEntry(zip, AfterEntry, s => catalog.Save(after, afterInput, s), CompressionLevel.NoCompression);
            if (isLora)
                foreach (var file in Directory.GetFiles(Path.Combine(scratch.Path, "adapter")))
                    CopyFile(zip, file, AdapterFolder + Path.GetFileName(file));
            else
                CopyFile(zip, Path.Combine(scratch.Path, TrainedWeights.FileName), TrainedWeightsEntry);
            foreach (var (name, bytes) in info.TokenizerFiles)
                WriteEntry(zip, TokenizerFolder + name, s => s.Write(bytes), CompressionLevel.Optimal);
            WriteEntry(zip, BaseFolder + "config.json", s => s.Write(File.ReadAllBytes(Path.Combine(info.BaseModel.Folder, "config.json"))), CompressionLevel.Optimal);
            if (layout == LoraModelManifest.LayoutMerged)
                CopyFile(zip, Path.Combine(scratch.Path, "merged", "model.safetensors"), BaseFolder + "model.safetensors");
            else if (layout == LoraModelManifest.LayoutEmbedded)
            {
                var folder = CheckpointFolder.Open(info.BaseModel.Folder);
                using var weights = folder.OpenWeights();
                if (CheckpointFolder.HashFiles(weights.Files) != info.BaseModel.WeightsSha256)
                    throw new InvalidDataException($"The base checkpoint in {info.BaseModel.Folder} changed after training; cannot embed it.");
                foreach (var file in weights.Files.Append(folder.WeightsEntry!).Distinct())
                    CopyFile(zip, file, BaseFolder + Path.GetFileName(file));
            }
        });
    }

    /// <summary>Loads a file written by <see cref="Save"/>; returns the pipeline and the input schema it expects.</summary>
    public static ITransformer Load(ModelOperationsCatalog catalog, string path, out DataViewSchema inputSchema, LoraLoadOptions? options = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Model file not found: {path}", path);
        options ??= new LoraLoadOptions();
        using var zip = OpenZip(path);
        var manifest = ReadManifest(zip, path);
        var before = catalog.Load(EntryStream(zip, BeforeEntry, path), out inputSchema);
        var lora = LoadLoraStage(zip, manifest, path, options);
        try
        {
            var after = catalog.Load(EntryStream(zip, AfterEntry, path), out _);
            var stages = PipelineStages.Flatten(before).Append(lora).Concat(PipelineStages.Flatten(after)).ToArray();
            return new TransformerChain<ITransformer>(stages);
        }
        catch
        {
            lora.Dispose();
            throw;
        }
    }

    /// <summary>Reads only the manifest of a saved model (labels, columns, base model, history).</summary>
    public static LoraModelManifest ReadManifest(string path)
    {
        using var zip = OpenZip(path);
        return ReadManifest(zip, path);
    }

    /// <summary>Writes the PEFT adapter stored in a saved model into <paramref name="folder"/>.</summary>
    public static void ExportAdapter(string path, string folder)
    {
        using var zip = OpenZip(path);
        var manifest = ReadManifest(zip, path);
        if (!manifest.FineTuning.IsLora) throw NotAnAdapter(path, manifest.FineTuning);
        Directory.CreateDirectory(folder);
        foreach (var entry in zip.Entries.Where(e => e.FullName.StartsWith(AdapterFolder, StringComparison.Ordinal) && e.Name.Length > 0))
            AtomicFile.Write(Path.Combine(folder, entry.Name), s => { using var src = entry.Open(); src.CopyTo(s); });
    }

    static LoraTextClassificationTransformer LoadLoraStage(ZipArchive zip, LoraModelManifest manifest, string path, LoraLoadOptions options)
    {
        using var scratch = new ScratchFolder();
        Extract(zip, TokenizerFolder, Path.Combine(scratch.Path, "tokenizer"));
        Extract(zip, AdapterFolder, Path.Combine(scratch.Path, "adapter"));
        var labels = manifest.Labels();
        SequenceClassifier model;
        string baseFolder;
        if (manifest.WeightsLayout == LoraModelManifest.LayoutAdapter)
        {
            baseFolder = LocateBase(manifest, options, path);
            var folder = CheckpointFolder.Open(baseFolder);
            var sha = folder.ComputeWeightsSha256();
            if (sha != manifest.BaseModelWeightsSha256)
                throw new InvalidDataException(
                    $"The base checkpoint at {folder.Directory} is not the one this model was trained on: its weights hash to " +
                    $"{sha[..16]}..., the model expects {manifest.BaseModelWeightsSha256[..16]}.... Restore the original " +
                    "checkpoint, pass LoraLoadOptions.BaseModelPath pointing at it, or save the model with EmbedBaseModel = true.");
            model = PretrainedModel.Load(folder, labels.Count);
        }
        else
        {
            Extract(zip, BaseFolder, Path.Combine(scratch.Path, "base"));
            baseFolder = manifest.BaseModelFolder;
            model = PretrainedModel.Load(Path.Combine(scratch.Path, "base"), labels.Count);
        }
        try
        {
            if (manifest.WeightsLayout != LoraModelManifest.LayoutMerged)
                model.MarkTrainable(LoadFittedWeights(zip, manifest, model, scratch.Path, path));
            var config = model.Config;
            var encoder = TextEncoders.FromFolder(Path.Combine(scratch.Path, "tokenizer"), config, manifest.MaxSequenceLength);
            var tokenizerFiles = Directory.GetFiles(Path.Combine(scratch.Path, "tokenizer")).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
            var info = manifest.ToInfo(baseFolder, tokenizerFiles, options.ScoringPrecision);
            return new LoraTextClassificationTransformer(model, encoder, info);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Loads the adapter (LoRA) or the changed weights (other methods) over the base, and returns the names of the
    /// parameters they set: those are the ones that were trained or created, and a later save stores them again.
    /// </summary>
    static HashSet<string> LoadFittedWeights(ZipArchive zip, LoraModelManifest manifest, SequenceClassifier model, string scratch, string path)
    {
        if (manifest.FineTuning.IsLora)
        {
            var adapter = PeftAdapter.Load(model, Path.Combine(scratch, "adapter"));
            var names = model.named_parameters().Select(p => p.name)
                .Where(n => LoraLinear.IsAdapterParameter(n) && adapter.AdaptedModules.Any(m => n.StartsWith(m + ".", StringComparison.Ordinal)));
            return names.Concat(adapter.SavedTensors).ToHashSet(StringComparer.Ordinal);
        }
        var entry = zip.GetEntry(TrainedWeightsEntry) ?? throw new InvalidDataException($"{path} lacks {TrainedWeightsEntry}, which a '{manifest.FineTuning}' model keeps its trained weights in");
        var file = Path.Combine(scratch, TrainedWeights.FileName);
        entry.ExtractToFile(file, overwrite: true);
        return TrainedWeights.Load(model, file).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>The error for asking a non-LoRA model for its PEFT adapter.</summary>
    internal static NotSupportedException NotAnAdapter(string what, FineTuning method) => new(
        $"{what} was fine-tuned with method '{method}', not LoRA, so it has no PEFT adapter to export; " +
        "write a plain Hugging Face checkpoint of it with 'lora merge' (MergedCheckpoint) instead.");

    static string LocateBase(LoraModelManifest manifest, LoraLoadOptions options, string path)
    {
        if (options.BaseModelPath is { } given)
        {
            if (!Directory.Exists(given)) throw new DirectoryNotFoundException($"Base model folder not found: {given}");
            return given;
        }
        if (Directory.Exists(manifest.BaseModelFolder)) return manifest.BaseModelFolder;
        if (Directory.Exists(manifest.BaseModelSource)) return manifest.BaseModelSource;
        try { return BaseModelResolver.Resolve(manifest.BaseModelSource, options.Hub); }
        catch (Exception e) when (e is IOException or ArgumentException or InvalidOperationException or NotSupportedException)
        {
            throw new DirectoryNotFoundException(
                $"{path} needs its base model, which was at {manifest.BaseModelFolder} ({manifest.BaseModelSource}) and is not there now. " +
                $"Pass LoraLoadOptions.BaseModelPath with the checkpoint's new location. ({e.Message})", e);
        }
    }

    static ZipArchive OpenZip(string path)
    {
        try { return ZipFile.OpenRead(path); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path} is not a LoRA model file (not a zip: {e.Message})", e); }
    }

    static LoraModelManifest ReadManifest(ZipArchive zip, string path)
    {
        var entry = zip.GetEntry(ManifestEntry)
            ?? throw new InvalidDataException($"{path} has no {ManifestEntry}; it is not a file written by SaveWithLora (an ML.NET model file loads with mlContext.Model.Load).");
        using var stream = entry.Open();
        var manifest = JsonSerializer.Deserialize<LoraModelManifest>(stream, LoraModelManifest.Json)
            ?? throw new InvalidDataException($"{path}: {ManifestEntry} is empty");
        if (manifest.FormatVersion > LoraModelManifest.CurrentFormatVersion)
            throw new InvalidDataException($"{path} was written in format {manifest.FormatVersion}; this library reads up to {LoraModelManifest.CurrentFormatVersion}. Update Microsoft.ML.LoRA.");
        return manifest;
    }

    static Stream EntryStream(ZipArchive zip, string name, string path)
    {
        var entry = zip.GetEntry(name) ?? throw new InvalidDataException($"{path} lacks {name}");
        var memory = new MemoryStream();
        using (var s = entry.Open()) s.CopyTo(memory);
        memory.Position = 0;
        return memory;
    }

    static void Extract(ZipArchive zip, string prefix, string folder)
    {
        Directory.CreateDirectory(folder);
        foreach (var entry in zip.Entries.Where(e => e.FullName.StartsWith(prefix, StringComparison.Ordinal) && e.Name.Length > 0))
        {
            if (entry.FullName.Length != prefix.Length + entry.Name.Length)
                throw new InvalidDataException($"unexpected nested entry {entry.FullName}");
            entry.ExtractToFile(Path.Combine(folder, entry.Name), overwrite: true);
        }
    }

    static void WriteEntry(ZipArchive zip, string name, Action<Stream> write, CompressionLevel level)
    {
        var entry = zip.CreateEntry(name, level);
        using var s = entry.Open();
        write(s);
    }

    static void CopyFile(ZipArchive zip, string file, string name) =>
        WriteEntry(zip, name, s => { using var src = File.OpenRead(file); src.CopyTo(s); }, CompressionLevel.NoCompression);
}
