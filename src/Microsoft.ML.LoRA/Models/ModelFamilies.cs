using System.Runtime.CompilerServices;
using Microsoft.ML.LoRA.Checkpoints;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// The registry of model families: the one list every part of the library looks a family up in (config reading,
/// model building, tokenizer choice, LoRA targets, PEFT files, benchmarks). Adding a family is a folder under
/// Models/Families and one line here (docs/architecture.md shows the steps).
/// </summary>
public static class ModelFamilies
{
    /// <summary>Every family, in the order error messages list their model types.</summary>
    public static IReadOnlyList<ModelFamily> All { get; } = new ModelFamily[]
    {
        new BertFamily(),
        new DistilBertFamily(),
        new RobertaFamily(),
        new Gpt2Family(),
        new DebertaV2Family(),
        new LlamaFamily(),
    };

    /// <summary>The family of a config (the one whose dialect read it).</summary>
    public static ModelFamily Of(TransformerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return Named(config.Family);
    }

    /// <summary>The family called <paramref name="name"/> ("bert", "gpt2", ...).</summary>
    public static ModelFamily Named(string name) =>
        Find(name) ?? throw new NotSupportedException($"model family '{name}' is not supported (supported: {string.Join(", ", All.Select(f => f.Name))})");

    /// <summary>The family called <paramref name="name"/>, or null when none is.</summary>
    internal static ModelFamily? Find(string name) => All.FirstOrDefault(f => f.Name == name);

    /// <summary>
    /// The registered descriptor of type <typeparamref name="TFamily"/>. The layers above the models (ONNX export,
    /// domain adaptation) key what they add to a family by this object, so they name no family by string.
    /// </summary>
    internal static TFamily Get<TFamily>() where TFamily : ModelFamily => All.OfType<TFamily>().Single();

    /// <summary>
    /// Makes every family's config dialect known to <see cref="ConfigDialects"/> before any config is read: the
    /// checkpoint layer below cannot name the families, so they are handed to it as the assembly loads.
    /// </summary>
#pragma warning disable CA2255 // a library's own registry, filled once from inside the library
    [ModuleInitializer]
    internal static void RegisterConfigDialects()
    {
        foreach (var family in All) ConfigDialects.Register(family);
    }
#pragma warning restore CA2255
}
