using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models;
using TorchSharp;

namespace Microsoft.ML.LoRA.Adaptation;

/// <summary>What loading a checkpoint into a language model did.</summary>
/// <param name="CreatedHead">True when the checkpoint had no (complete) language-model head and one was created.</param>
/// <param name="MissingHeadTensors">The head tensors the checkpoint lacked (empty when it had the head).</param>
/// <param name="KeptPooler">True when a BERT checkpoint's pooler was loaded and is carried through unchanged.</param>
/// <param name="IgnoredTensors">Checkpoint tensors neither the base nor the head uses.</param>
internal sealed record LanguageModelLoadReport(
    bool CreatedHead,
    IReadOnlyList<string> MissingHeadTensors,
    bool KeptPooler,
    IReadOnlyList<string> IgnoredTensors);

/// <summary>
/// Fills a <see cref="LanguageModel"/> from a Hugging Face checkpoint folder. The base model's tensors go through the
/// library's <see cref="WeightLoader"/> (prefixes, legacy names, shape checks, errors naming missing tensors), the
/// head's are read by their Hugging Face names; a checkpoint without the head gets one initialised as Hugging Face
/// would, and the log says so.
/// </summary>
internal static class LanguageModelCheckpoint
{
    /// <summary>Loads the checkpoint in <paramref name="folder"/>; <paramref name="log"/> hears what was created or ignored.</summary>
    /// <exception cref="CheckpointFormatException">A base tensor is missing or misshapen, or the config unties the output embeddings.</exception>
    public static (LanguageModel Model, LanguageModelLoadReport Report) Load(CheckpointFolder folder, Action<string>? log = null)
    {
        var config = folder.Config;
        if (config.Raw["tie_word_embeddings"] is JsonValue tie && tie.TryGetValue<bool>(out var tied) && !tied)
            throw new CheckpointFormatException(config.Source,
                "tie_word_embeddings is false: the language-model head has its own output embeddings, which domain adaptation does not support");
        using var weights = folder.OpenWeights();

        WeightLoadReport baseReport;
        var classifier = ModelFactory.Create(config, numLabels: 1);
        LanguageModel? model = null;
        try
        {
            lock (TorchRandomLock.Sync) baseReport = WeightLoader.Load(classifier, weights);
            bool keptPooler = classifier.named_modules().Any(m => m.name == "bert.pooler") && !baseReport.CreatedModules.Contains("bert.pooler");
            model = LanguageModelFactory.Create(config, keptPooler);
            CopyBase(classifier, model);
            var missing = LoadHead(model, weights);
            if (missing.Count > 0)
            {
                model.ResetHead();
                log?.Invoke(missing.Count == model.HeadParameters.Count
                    ? $"The checkpoint has no {model.Architecture} head; created it with Hugging Face's initialisation (it is written with the adapted model)."
                    : $"The checkpoint's {model.Architecture} head is incomplete (no {string.Join(", ", missing)}); created a new head with Hugging Face's initialisation.");
            }
            var ignored = baseReport.IgnoredTensors;
            if (ignored.Count > 0)
                log?.Invoke($"Ignored {ignored.Count} checkpoint tensor(s) the {model.Architecture} model does not use, e.g. {string.Join(", ", ignored.Take(3))}.");
            return (model, new LanguageModelLoadReport(missing.Count > 0, missing, keptPooler, ignored));
        }
        catch
        {
            model?.Dispose();
            throw;
        }
        finally
        {
            classifier.Dispose();
        }
    }

    /// <summary>Copies the base model's parameters (same names under the family prefix) from the loaded classifier.</summary>
    static void CopyBase(SequenceClassifier classifier, LanguageModel model)
    {
        var prefix = model.Layout.BasePrefix + ".";
        var target = model.named_parameters().Where(p => p.name.StartsWith(prefix, StringComparison.Ordinal))
            .ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        int copied = 0;
        using var _ = torch.no_grad();
        foreach (var (name, p) in classifier.named_parameters())
        {
            if (!target.TryGetValue(name, out var destination)) continue;
            destination.copy_(p);
            copied++;
        }
        if (copied != target.Count)
            throw new InvalidOperationException($"the {model.Architecture} base has {target.Count} parameters but only {copied} were found in the loaded model");
    }

    /// <summary>Copies the head's tensors; returns the head parameters the checkpoint lacks (all of them or none are used).</summary>
    static List<string> LoadHead(LanguageModel model, ITensorSource weights)
    {
        var available = new HashSet<string>(weights.Names, StringComparer.Ordinal);
        var found = new Dictionary<string, string>(StringComparer.Ordinal);
        var missing = new List<string>();
        foreach (var (name, aliases) in model.HeadParameters)
        {
            var stored = aliases.Prepend(name).FirstOrDefault(available.Contains);
            if (stored is null) missing.Add(name);
            else found[name] = stored;
        }
        if (missing.Count > 0) return missing;
        using var _ = torch.no_grad();
        foreach (var (name, p) in model.named_parameters())
        {
            if (!found.TryGetValue(name, out var stored)) continue;
            var shape = weights.Shape(stored);
            if (!shape.SequenceEqual(p.shape))
                throw new CheckpointFormatException(string.Join(", ", weights.Files),
                    $"'{stored}' is [{string.Join(", ", shape)}] in the checkpoint but the config implies [{string.Join(", ", p.shape)}]");
            using var value = weights.ReadFloat32(stored);
            p.copy_(value);
        }
        return missing;
    }
}
