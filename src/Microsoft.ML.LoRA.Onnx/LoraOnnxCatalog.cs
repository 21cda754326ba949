using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Tokenization;
using Microsoft.ML.Transforms.Onnx;

namespace Microsoft.ML.LoRA.Onnx;

/// <summary>
/// ML.NET stages for an exported model (<c>lora export-onnx</c>): the tokenizer stage that makes the graph's int64
/// input columns from text, and the whole classifier (tokenizer, ML.NET's <c>ApplyOnnxModel</c>, softmax scores and
/// the predicted label). Built from the export folder alone; no libtorch is loaded.
/// </summary>
/// <remarks>
/// ApplyOnnxModel scores one row at a time, each at its own length (the tokenizer stage writes variable-length
/// vectors; the graph's sequence axis is dynamic); <see cref="OnnxTextClassifier"/> scores length-sorted batches and is
/// faster on many texts. The stages are custom mappings without a contract name: build the pipeline from the folder
/// where it runs rather than saving it (the folder is the artifact).
/// </remarks>
public static class LoraOnnxCatalog
{
    /// <summary>Column names the classifier adds: the logits, softmax probabilities in label order, and the predicted label.</summary>
    public const string LogitsColumnName = "logits", ScoreColumnName = "Score", PredictedLabelColumnName = "PredictedLabel";

    /// <summary>
    /// Tokenizes <paramref name="textColumnName"/> (and <paramref name="pairColumnName"/>) as the exported model's
    /// training did into variable-length Int64 vector columns named as the graph's inputs (input_ids, attention_mask,
    /// token_type_ids), truncated to the model's maximum sequence length. ApplyOnnxModel reads them with the shapes
    /// <c>[1, -1]</c> (see <see cref="InputShapes"/>).
    /// </summary>
    /// <param name="catalog">mlContext.Transforms.</param>
    /// <param name="folder">The export folder (lora-onnx.json, model.onnx, tokenizer files).</param>
    /// <param name="textColumnName">The text column; default: the one the model was trained on (lora-onnx.json), else "Text".</param>
    /// <param name="pairColumnName">The second text of a pair model; default: the one it was trained on, if any.</param>
    public static IEstimator<ITransformer> TokenizeForLoraOnnx(this TransformsCatalog catalog, string folder, string? textColumnName = null,
        string? pairColumnName = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        var description = OnnxModelDescription.Load(folder);
        var encoder = description.CreateTextEncoder(folder);
        textColumnName ??= description.TextColumn ?? "Text";
        pairColumnName ??= description.TextPairColumn;

        var output = SchemaDefinition.Create(typeof(TokenColumns));
        foreach (var (member, name) in new[] { (nameof(TokenColumns.InputIds), "input_ids"), (nameof(TokenColumns.AttentionMask), "attention_mask"),
                     (nameof(TokenColumns.TokenTypeIds), "token_type_ids") })
        {
            var column = output[member];
            column.ColumnName = name;
            column.ColumnType = new VectorDataViewType(NumberDataViewType.Int64);   // variable length
        }
        void Fill(string? text, string? pair, TokenColumns row)
        {
            var encoded = encoder.Encode(text, pair);
            row.InputIds = Array.ConvertAll(encoded.InputIds, v => (long)v);
            row.AttentionMask = new long[encoded.Length];
            Array.Fill(row.AttentionMask, 1L);
            row.TokenTypeIds = Array.ConvertAll(encoded.TokenTypeIds, v => (long)v);
        }
        if (pairColumnName is null)
        {
            var input = SchemaDefinition.Create(typeof(TextColumn));
            input[nameof(TextColumn.Text)].ColumnName = textColumnName;
            return catalog.CustomMapping<TextColumn, TokenColumns>((s, d) => Fill(s.Text, null, d), null, input, output);
        }
        var pairInput = SchemaDefinition.Create(typeof(TextPairColumns));
        pairInput[nameof(TextPairColumns.Text)].ColumnName = textColumnName;
        pairInput[nameof(TextPairColumns.Pair)].ColumnName = pairColumnName;
        return catalog.CustomMapping<TextPairColumns, TokenColumns>((s, d) => Fill(s.Text, s.Pair, d), null, pairInput, output);
    }

    /// <summary>
    /// The exported classifier as an ML.NET pipeline: <see cref="TokenizeForLoraOnnx"/>, ML.NET's ApplyOnnxModel
    /// (output column <c>logits</c>), then <c>Score</c> (softmax probabilities in the order of the labels in
    /// lora-onnx.json) and <c>PredictedLabel</c> (the label name).
    /// </summary>
    public static IEstimator<ITransformer> LoraOnnxClassifier(this TransformsCatalog catalog, string folder, string? textColumnName = null,
        string? pairColumnName = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        var description = OnnxModelDescription.Load(folder);
        var tokenize = catalog.TokenizeForLoraOnnx(folder, textColumnName, pairColumnName);
        int labels = description.Labels.Count;
        var apply = catalog.ApplyOnnxModel(new[] { LogitsColumnName }, description.Inputs.ToArray(),
            Path.Combine(folder, OnnxModelDescription.ModelFileName), InputShapes(description), gpuDeviceId: null, fallbackToCpu: false, recursionLimit: 100);

        var logitsInput = SchemaDefinition.Create(typeof(LogitsColumn));
        var logitsColumn = logitsInput[nameof(LogitsColumn.Logits)];
        logitsColumn.ColumnName = LogitsColumnName;
        logitsColumn.ColumnType = new VectorDataViewType(NumberDataViewType.Single, labels);
        var scores = SchemaDefinition.Create(typeof(ScoreColumns));
        scores[nameof(ScoreColumns.Score)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, labels);
        var names = description.Labels.ToArray();
        var score = catalog.CustomMapping<LogitsColumn, ScoreColumns>((s, d) =>
        {
            d.Score = OnnxTextClassifier.Softmax(s.Logits);
            d.PredictedLabel = names[Array.IndexOf(d.Score, d.Score.Max())];
        }, null, logitsInput, scores);
        return tokenize.Append(apply).Append(score);
    }

    /// <summary>
    /// The shapes ApplyOnnxModel needs for an export's graph (its <c>shapeDictionary</c>): each input <c>[1, -1]</c>,
    /// one row of any length, and the logits <c>[1, labels]</c>.
    /// </summary>
    public static IDictionary<string, int[]> InputShapes(OnnxModelDescription description)
    {
        ArgumentNullException.ThrowIfNull(description);
        var shapes = description.Inputs.ToDictionary(i => i, _ => new[] { 1, -1 });
        shapes[description.Output] = new[] { 1, description.Labels.Count };
        return shapes;
    }

    // The rows the custom mappings read and write; the schema definitions above give them their column names and sizes.
    sealed class TextColumn
    {
        public string? Text { get; set; }
    }

    sealed class TextPairColumns
    {
        public string? Text { get; set; }
        public string? Pair { get; set; }
    }

    sealed class TokenColumns
    {
        public long[] InputIds { get; set; } = Array.Empty<long>();
        public long[] AttentionMask { get; set; } = Array.Empty<long>();
        public long[] TokenTypeIds { get; set; } = Array.Empty<long>();
    }

    sealed class LogitsColumn
    {
        public float[] Logits { get; set; } = Array.Empty<float>();
    }

    sealed class ScoreColumns
    {
        public float[] Score { get; set; } = Array.Empty<float>();
        public string PredictedLabel { get; set; } = "";
    }
}
