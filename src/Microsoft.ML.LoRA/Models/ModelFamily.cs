using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models.Kernels;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// Everything the library knows about one transformer family, in one place: the <c>model_type</c> names it answers to,
/// how its config.json is read (and with it the tokenizer convention, token types, position limit and weight layout
/// the layers below need), where its modules live and what each LoRA switch means (<see cref="Layout"/>), and how its
/// sequence classifier is built. Each family is one folder under Models/Families with one of these;
/// <see cref="ModelFamilies"/> lists them. What needs the layers above the models (its ONNX graph writer, its
/// language model for domain adaptation) is registered there by this object, in Export's <c>OnnxFamilyGraphs</c> and
/// Adaptation's <c>LanguageModelFactory</c>.
/// </summary>
public abstract class ModelFamily : IConfigDialect
{
    /// <inheritdoc />
    public abstract string Name { get; }

    /// <inheritdoc />
    public abstract IReadOnlyList<string> ModelTypes { get; }

    /// <summary>Where the family keeps its head and base model, and which modules each LoRA switch means.</summary>
    public abstract FamilyLayout Layout { get; }

    /// <summary>The family's fields of a config.json (see <see cref="IConfigDialect.Read"/>).</summary>
    protected abstract TransformerConfig ReadConfig(ConfigJson json);

    /// <summary>The family's sequence classifier for <paramref name="config"/>, freshly initialised (see <see cref="ModelFactory"/>).</summary>
    protected internal abstract SequenceClassifier CreateClassifier(TransformerConfig config, int numLabels);

    TransformerConfig IConfigDialect.Read(ConfigJson json)
    {
        var config = ReadConfig(json);
        Activations.Check(config.Activation, json.Source);
        return config;
    }

    public override string ToString() => Name;
}
