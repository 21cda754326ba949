using Microsoft.ML.LoRA.Checkpoints;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// RoBERTa (<c>model_type</c> "roberta"): the BERT encoder without pooler or token types, positions counted after the
/// padding index, a dense + out_proj head, byte-level BPE.
/// </summary>
public sealed class RobertaFamily : ModelFamily
{
    public override string Name => "roberta";

    public override IReadOnlyList<string> ModelTypes { get; } = new[] { "roberta" };

    public override FamilyLayout Layout { get; } = new("roberta", "roberta",
        HeadModules: new[] { "classifier.dense", "classifier.out_proj" },
        CreatableModules: new[] { "classifier" },
        SwitchPatterns: FamilyLayout.WithHead(BertFamily.EncoderSwitches, @"classifier\.(dense|out_proj)"),
        IgnoredCheckpointPrefixes: new[] { "lm_head.", "roberta.pooler.", "pooler.", "roberta.embeddings.position_ids", "embeddings.position_ids" },
        ModulesAfterLayers: Array.Empty<string>());

    protected override TransformerConfig ReadConfig(ConfigJson json) => BertFamily.ReadEncoderConfig(BertFamily.AbsolutePositionsOnly(json), defaultPadTokenId: 1) with
    {
        Tokenizer = TokenizerKind.RobertaByteLevelBpe,
        PositionOffset = 2,
    };

    protected internal override SequenceClassifier CreateClassifier(TransformerConfig config, int numLabels) =>
        new RobertaForSequenceClassification(config, numLabels);
}
