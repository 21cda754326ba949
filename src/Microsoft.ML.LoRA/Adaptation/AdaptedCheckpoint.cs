using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Persistence;
using Microsoft.ML.LoRA.Tokenization;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Adaptation;

/// <summary>
/// The folder domain adaptation writes, a Hugging Face checkpoint that <c>lora train --model</c> takes unchanged:
/// config.json (the input's, <c>architectures</c> set to the language-model class), model.safetensors (the base and the
/// language-model head under Hugging Face names; the tied output projection is not stored, as Hugging Face does not
/// store it), the tokenizer files, adapt.json (the run's figures) and, when the adapter is kept, adapter/ (a PEFT
/// adapter folder). The folder is written under a temporary name beside the target and renamed into place, so it
/// appears complete or not at all.
/// </summary>
internal static class AdaptedCheckpoint
{
    /// <summary>The run's figures.</summary>
    public const string ReportFile = "adapt.json";

    /// <summary>The PEFT adapter folder inside the output, with <see cref="DomainAdaptationOptions.KeepAdapter"/>.</summary>
    public const string AdapterFolder = "adapter";

    /// <summary>The weights file.</summary>
    public const string WeightsFile = "model.safetensors";

    /// <summary>Throws when <paramref name="path"/> is a file, or a folder with content and <paramref name="overwrite"/> is false.</summary>
    public static void CheckWritable(string path, bool overwrite)
    {
        var full = Path.GetFullPath(path);
        if (File.Exists(full)) throw new IOException($"The output '{full}' is a file; give a folder.");
        if (!overwrite && Directory.Exists(full) && Directory.EnumerateFileSystemEntries(full).Any())
            throw new IOException($"The output folder {full} is not empty; choose another folder, or overwrite it (--force, Overwrite = true).");
    }

    /// <summary>
    /// Writes the adapted checkpoint. <paramref name="tensors"/> are the weights to store (with HF names);
    /// <paramref name="writeExtra"/> adds files (the adapter folder, adapt.json) to the folder before it is moved into place.
    /// </summary>
    public static void Write(string path, bool overwrite, CheckpointFolder source, string architecture,
        IEnumerable<KeyValuePair<string, Tensor>> tensors, Action<string> writeExtra)
    {
        CheckWritable(path, overwrite);
        var full = Path.GetFullPath(path).TrimEnd(Path.DirectorySeparatorChar);
        var parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        var temp = Path.Combine(parent, $".{Path.GetFileName(full)}.adapt-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            SafeTensorsWriter.Save(Path.Combine(temp, WeightsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" });
            var config = (JsonObject)source.Config.Raw.DeepClone();
            config["architectures"] = new JsonArray(architecture);
            AtomicFile.WriteAllText(Path.Combine(temp, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            foreach (var name in TextEncoders.TokenizerFileNames)
            {
                var file = Path.Combine(source.Directory, name);
                if (File.Exists(file)) File.WriteAllBytes(Path.Combine(temp, name), File.ReadAllBytes(file));   // not File.Copy: keep no read-only mode
            }
            writeExtra(temp);
            MoveIntoPlace(temp, full);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>Renames the finished folder to the target; an existing target (empty, or replaced by request) goes only once that succeeds.</summary>
    static void MoveIntoPlace(string temp, string target)
    {
        if (!Directory.Exists(target))
        {
            Directory.Move(temp, target);
            return;
        }
        var old = Path.Combine(Path.GetDirectoryName(target)!, $".{Path.GetFileName(target)}.old-{Guid.NewGuid():N}");
        Directory.Move(target, old);
        try
        {
            Directory.Move(temp, target);
        }
        catch
        {
            Directory.Move(old, target);
            throw;
        }
        TryDelete(old);
    }

    static void TryDelete(string folder)
    {
        try { if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
