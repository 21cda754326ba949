using System.IO.Compression;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Models.Quantization;
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
/// <para>
/// Integrity: the manifest, written last, records the size and SHA-256 of every other entry. Loading checks every
/// entry it reads against the zip's CRC-32 and those records (files written before the records existed: the CRC-32
/// only), bounds each entry's size before and while reading it (<see cref="LoraModelFileLimits"/>), and refuses odd
/// entry names ('..', nested folders, duplicates). Any such failure is a <see cref="ModelFileException"/> naming the
/// file and the entry. Only embedded base weights are written to disk (a private scratch folder, after their size check,
/// deleted once loaded); everything else is read in memory.
/// </para>
/// See docs/persistence.md.
/// </summary>
public static class LoraModelFile
{
    const string ManifestEntry = ModelFileReader.ManifestEntry;
    const string BeforeEntry = ModelFileReader.BeforeEntry;
    const string AfterEntry = ModelFileReader.AfterEntry;
    const string AdapterFolder = ModelFileReader.AdapterFolder;
    const string TrainedWeightsEntry = ModelFileReader.WeightsFolder + TrainedWeights.FileName;
    const string TokenizerFolder = ModelFileReader.TokenizerFolder;
    const string BaseFolder = ModelFileReader.BaseFolder;

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
            var entries = new Dictionary<string, LoraModelEntry>(StringComparer.Ordinal);
            WriteEntry(zip, entries, BeforeEntry, s => catalog.Save(before, inputSchema, s), CompressionLevel.NoCompression);
            WriteEntry(zip, entries, AfterEntry, s => catalog.Save(after, afterInput, s), CompressionLevel.NoCompression);
            if (isLora)
                foreach (var file in Directory.GetFiles(Path.Combine(scratch.Path, "adapter")).Order(StringComparer.Ordinal))
                    CopyFile(zip, entries, file, AdapterFolder + Path.GetFileName(file));
            else
                CopyFile(zip, entries, Path.Combine(scratch.Path, TrainedWeights.FileName), TrainedWeightsEntry);
            foreach (var (name, bytes) in info.TokenizerFiles)
                WriteEntry(zip, entries, TokenizerFolder + name, s => s.Write(bytes), CompressionLevel.Optimal);
            WriteEntry(zip, entries, BaseFolder + "config.json", s => s.Write(File.ReadAllBytes(Path.Combine(info.BaseModel.Folder, "config.json"))), CompressionLevel.Optimal);
            if (layout == LoraModelManifest.LayoutMerged)
                CopyFile(zip, entries, Path.Combine(scratch.Path, "merged", "model.safetensors"), BaseFolder + "model.safetensors");
            else if (layout == LoraModelManifest.LayoutEmbedded)
            {
                var folder = CheckpointFolder.Open(info.BaseModel.Folder);
                using var weights = folder.OpenWeights();
                if (CheckpointFolder.HashFiles(weights.Files) != info.BaseModel.WeightsSha256)
                    throw new InvalidDataException($"The base checkpoint in {info.BaseModel.Folder} changed after training; cannot embed it.");
                foreach (var file in weights.Files.Append(folder.WeightsEntry!).Distinct())
                    CopyFile(zip, entries, file, BaseFolder + Path.GetFileName(file));
            }
            // The manifest goes last: it records the size and SHA-256 of every entry above.
            manifest.Entries = entries;
            WriteEntry(zip, null, ManifestEntry, s => JsonSerializer.Serialize(s, manifest, LoraModelManifest.Json), CompressionLevel.Optimal);
        });
    }

    /// <summary>Loads a file written by <see cref="Save"/>; returns the pipeline and the input schema it expects.</summary>
    /// <exception cref="FileNotFoundException">There is no file at <paramref name="path"/>.</exception>
    /// <exception cref="ModelFileException">
    /// The file is not a saved model or is damaged: not a zip, no or a malformed manifest, an entry whose bytes do not
    /// match the zip's CRC-32 or the manifest's size and SHA-256, an entry larger than allowed
    /// (<see cref="LoraModelFileLimits"/>), an entry with an odd name. The message names the file and the entry.
    /// </exception>
    public static ITransformer Load(ModelOperationsCatalog catalog, string path, out DataViewSchema inputSchema, LoraLoadOptions? options = null)
    {
        options ??= new LoraLoadOptions();
        using var file = ModelFileReader.Open(path);
        var manifest = file.Manifest;
        var before = LoadPipeline(catalog, file, BeforeEntry, out inputSchema);
        var lora = LoadLoraStage(file, manifest, options);
        try
        {
            var after = LoadPipeline(catalog, file, AfterEntry, out _);
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
    /// <exception cref="ModelFileException">The file is not a saved model, or its manifest is damaged or malformed.</exception>
    public static LoraModelManifest ReadManifest(string path)
    {
        using var file = ModelFileReader.Open(path);
        return file.Manifest;
    }

    /// <summary>
    /// Writes the PEFT adapter stored in a saved model into <paramref name="folder"/>. Every adapter entry is read
    /// and checked (as <see cref="Load"/> checks it) before any file is written.
    /// </summary>
    /// <exception cref="ModelFileException">The file is not a saved model or is damaged (see <see cref="Load"/>).</exception>
    public static void ExportAdapter(string path, string folder)
    {
        using var file = ModelFileReader.Open(path);
        var manifest = file.Manifest;
        if (!manifest.FineTuning.IsLora) throw NotAnAdapter(path, manifest.FineTuning);
        var entries = file.Files(AdapterFolder);
        if (entries.Count == 0) file.Require(AdapterFolder + PeftAdapter.ConfigFile, "a LoRA model keeps its PEFT adapter in adapter/");
        foreach (var entry in entries) file.Verify(entry);
        Directory.CreateDirectory(folder);
        foreach (var entry in entries)
            AtomicFile.Write(Path.Combine(folder, entry.Name), s => file.CopyTo(entry, s));
    }

    static ITransformer LoadPipeline(ModelOperationsCatalog catalog, ModelFileReader file, string entry, out DataViewSchema schema)
    {
        var bytes = file.ReadAllBytes(entry);
        try { return catalog.Load(new MemoryStream(bytes, writable: false), out schema); }
        catch (Exception e) when (e is InvalidDataException or FormatException or IOException or InvalidOperationException or ArgumentException or NotSupportedException)
        {
            throw file.Fail(entry, $"ML.NET cannot load this pipeline ({e.Message})", e);
        }
    }

    static LoraTextClassificationTransformer LoadLoraStage(ModelFileReader file, LoraModelManifest manifest, LoraLoadOptions options)
    {
        var tokenizerFiles = file.Files(TokenizerFolder).ToDictionary(e => e.Name, file.ReadAllBytes, StringComparer.Ordinal);
        var labels = manifest.Labels();
        // Embedded base (or merged) weights can be gigabytes and are read tensor by tensor from a checkpoint folder: they
        // go to a private scratch folder, deleted once the model is loaded. Nothing else of the file goes to disk.
        using var scratch = manifest.WeightsLayout == LoraModelManifest.LayoutAdapter ? null : new ScratchFolder();
        SequenceClassifier model;
        string baseFolder;
        // A quantized base is kept in memory only: the base checkpoint is quantized again, exactly as in training (LoftQ's
        // after its adapters are loaded), and a bf16 checkpoint kept in 16 bits in training is kept so again. A merged
        // model's weights already hold the dequantized base with the adapter folded in, and load as they are.
        bool merged = manifest.WeightsLayout == LoraModelManifest.LayoutMerged;
        QuantizedBase? Storage(CheckpointFolder folder) => merged ? null : manifest.Lora.BaseStorageWhileLoading(folder, manifest.FineTuning);
        if (manifest.WeightsLayout == LoraModelManifest.LayoutAdapter)
        {
            baseFolder = LocateBase(manifest, options, file.Path);
            var folder = CheckpointFolder.Open(baseFolder);
            var sha = folder.ComputeWeightsSha256();
            if (sha != manifest.BaseModelWeightsSha256)
                throw new InvalidDataException(
                    $"The base checkpoint at {folder.Directory} is not the one this model was trained on: its weights hash to " +
                    $"{sha[..16]}..., the model expects {manifest.BaseModelWeightsSha256[..16]}.... Restore the original " +
                    "checkpoint, pass LoraLoadOptions.BaseModelPath pointing at it, or save the model with EmbedBaseModel = true.");
            model = PretrainedModel.Load(folder, labels.Count, quantization: Storage(folder));
        }
        else
        {
            file.ExtractFolder(BaseFolder, Path.Combine(scratch!.Path, "base"));
            baseFolder = manifest.BaseModelFolder;
            model = InFile(file, BaseFolder, () =>
            {
                var folder = CheckpointFolder.Open(Path.Combine(scratch.Path, "base"));
                return PretrainedModel.Load(folder, labels.Count, quantization: Storage(folder));
            });
        }
        try
        {
            if (!merged)
                model.MarkTrainable(LoadFittedWeights(file, manifest, model));
            if (!merged) manifest.Lora.QuantizedAfterInit?.ApplyToLayers(model);
            var config = model.Config;
            // Read from the entries in memory: tokenizer files never go to disk.
            var encoder = InFile(file, TokenizerFolder, () => TextEncoders.FromFiles(tokenizerFiles, TokenizerFolder.TrimEnd('/'), config, manifest.MaxSequenceLength));
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
    /// parameters they set: those are the ones that were trained or created, and a later save stores them again. Both
    /// are read from the file as they are checked, never written to disk: the adapter (small) from memory, the changed
    /// weights (as large as the model after a full fit) tensor by tensor as they inflate.
    /// </summary>
    static HashSet<string> LoadFittedWeights(ModelFileReader file, LoraModelManifest manifest, SequenceClassifier model)
    {
        if (manifest.FineTuning.IsLora)
        {
            const string why = "a LoRA model keeps its PEFT adapter in adapter/";
            var config = file.Require(AdapterFolder + PeftAdapter.ConfigFile, why);
            var weights = file.Require(AdapterFolder + PeftAdapter.WeightsFile, why);
            foreach (var other in file.Files(AdapterFolder).Where(e => e != config && e != weights)) file.Verify(other);
            string configJson;
            using (var reader = new StreamReader(new MemoryStream(file.ReadAllBytes(config), writable: false), detectEncodingFromByteOrderMarks: true))
                configJson = reader.ReadToEnd();
            var bytes = new MemoryStream(file.ReadAllBytes(weights), writable: false);
            var adapter = InFile(file, AdapterFolder, () =>
                PeftAdapter.LoadFrom(model, configJson, config.FullName, SafeTensorsFile.Open(bytes, weights.FullName, bytes.Length)));
            var names = model.named_parameters().Select(p => p.name)
                .Where(n => LoraLinear.IsAdapterParameter(n) && adapter.AdaptedModules.Any(m => n.StartsWith(m + ".", StringComparison.Ordinal)));
            return names.Concat(adapter.SavedTensors).ToHashSet(StringComparer.Ordinal);
        }
        var entry = file.Require(TrainedWeightsEntry, $"a '{manifest.FineTuning}' model keeps its trained weights there");
        using var stream = file.OpenChecked(entry);
        return InFile(file, TrainedWeightsEntry, () =>
        {
            var loaded = TrainedWeights.Load(model, SafeTensorsFile.Open(stream, TrainedWeightsEntry, stream.Length));
            stream.ReadToEnd();   // the size, CRC-32 and SHA-256 are checked once every byte was read
            return loaded;
        }).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>
    /// Runs <paramref name="read"/> over files read from <paramref name="entry"/>; a malformed or missing file there
    /// becomes a <see cref="ModelFileException"/> naming the model file and the entry.
    /// </summary>
    static T InFile<T>(ModelFileReader file, string entry, Func<T> read)
    {
        try { return read(); }
        catch (Exception e) when (e is Checkpoints.CheckpointFormatException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException or JsonException or FormatException)
        {
            throw file.Fail(entry, e.Message, e);
        }
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

    static void WriteEntry(ZipArchive zip, Dictionary<string, LoraModelEntry>? entries, string name, Action<Stream> write, CompressionLevel level)
    {
        var entry = zip.CreateEntry(name, level);
        using var s = entry.Open();
        using var hashing = new HashingWriteStream(s);
        write(hashing);
        entries?.Add(name, new LoraModelEntry { Size = hashing.Count, Sha256 = hashing.Sha256() });
    }

    static void CopyFile(ZipArchive zip, Dictionary<string, LoraModelEntry> entries, string file, string name) =>
        WriteEntry(zip, entries, name, s => { using var src = File.OpenRead(file); src.CopyTo(s, 1 << 20); }, CompressionLevel.NoCompression);
}
