namespace Microsoft.ML.LoRA.Checkpoints;

/// <summary>
/// How one model family writes its config.json: the <c>model_type</c> names it answers to and the reading of its own
/// field names (<c>hidden_size</c> / <c>dim</c> / <c>n_embd</c>, ...) into a <see cref="TransformerConfig"/>, with the
/// facts the layers below the models need (tokenizer convention, token types, position offset, weight layout). Each
/// family in <c>Models/Families</c> is one; <see cref="ConfigDialects"/> finds them by model_type.
/// </summary>
public interface IConfigDialect
{
    /// <summary>The family's name, lower case ("bert"); <see cref="TransformerConfig.Family"/> holds it.</summary>
    string Name { get; }

    /// <summary>The config.json <c>model_type</c> values this family reads.</summary>
    IReadOnlyList<string> ModelTypes { get; }

    /// <summary>
    /// The family's fields of <paramref name="json"/>. The fields every family shares (model_type, labels, bos/eos ids,
    /// the raw JSON and its source) are filled in by <see cref="TransformerConfig.Parse"/> afterwards.
    /// </summary>
    TransformerConfig Read(ConfigJson json);
}
