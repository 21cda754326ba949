using Microsoft.ML;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Persistence;
using Microsoft.ML.LoRA.Tests.Persistence;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Cli;

/// <summary>
/// A saved model that scores NaN (weights damaged before they were saved, so every integrity check passes) makes
/// <c>lora evaluate</c> and <c>lora predict</c> exit 4 with one line naming the model file and the first data row whose
/// score is not finite; no metrics are printed and no --to file is written.
/// </summary>
public class NonFiniteScoreTests(TrainedSpamPipeline trained) : IClassFixture<TrainedSpamPipeline>
{
    const string BaseWeights = "base/model.safetensors";
    const string Poisoned = "prize";

    /// <summary>
    /// The trained pipeline saved with its base weights embedded, then the word embedding of <see cref="Poisoned"/> set to
    /// NaN and the manifest's hashes updated: rows with that word score NaN, the others score as before.
    /// </summary>
    static string SaveWithNanEmbedding(TrainedSpamPipeline trained, TempDir dir)
    {
        var saved = dir.File("saved.zip");
        new MLContext().Model.SaveWithLora(trained.Model, trained.Train.Schema, saved, new LoraSaveOptions { EmbedBaseModel = true });
        var vocab = System.Text.Encoding.UTF8.GetString(ModelZipSurgery.Read(saved, "tokenizer/vocab.txt")).Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        int token = vocab.IndexOf(Poisoned);
        token.Should().BeGreaterThan(0, "the word is in BERT's vocabulary");

        var path = dir.File("model.zip");
        ModelZipSurgery.RewriteConsistently(saved, path, (name, bytes) =>
        {
            if (name != BaseWeights) return bytes;
            var scratch = dir.File("weights.safetensors");
            File.WriteAllBytes(scratch, bytes);
            var header = SafeTensorsFile.Open(scratch);
            var embedding = header.Entries.Single(e => e.Name.EndsWith("word_embeddings.weight", StringComparison.Ordinal));
            embedding.DType.Should().Be(SafeTensorsDType.F32);
            long width = embedding.Shape[1], at = header.DataOffset + embedding.Begin + token * width * 4;
            for (long i = 0; i < width; i++) BitConverter.TryWriteBytes(bytes.AsSpan((int)(at + 4 * i)), float.NaN);
            return bytes;
        });
        return path;
    }

    [Fact]
    public void Evaluate_and_predict_exit_4_naming_the_model_file_and_the_first_row_with_a_non_finite_score()
    {
        using var dir = new TempDir();
        var model = SaveWithNanEmbedding(trained, dir);
        // Rows 3 and 4 hold the poisoned word. Row 4 is the longer, so it is scored first (batches run longest first):
        // the message must still name row 3.
        var data = dir.File("data.tsv");
        File.WriteAllLines(data, new[]
        {
            "Label\tText", "ham\thello there", "spam\tcall me now for free", "spam\ta prize",
            "ham\tthe prize you won today is waiting for you at the office until friday",
        });
        var clean = dir.File("clean.tsv");
        File.WriteAllLines(clean, File.ReadAllLines(data).Take(3));

        var cleanRun = CliRun.Lora("evaluate", "--model", model, "--data", clean);
        var evaluate = CliRun.Lora("evaluate", "--model", model, "--data", data);
        var evaluateJson = CliRun.Lora("evaluate", "--model", model, "--data", data, "--json");
        var predict = CliRun.Lora("predict", "--model", model, "--data", data, "--to", dir.File("predictions.tsv"));

        cleanRun.ExitCode.Should().Be(ExitCodes.Success, "rows without the poisoned word score finitely: {0}", cleanRun.Stderr);
        foreach (var run in new[] { evaluate, evaluateJson, predict })
        {
            run.ShouldFailCleanly(ExitCodes.InvalidInput, model, "non-finite score (NaN)");
            run.StderrLines[0].Should().Contain($"data row 3 of {data}");
        }
        evaluate.Stdout.Should().NotContain("accuracy", "no metrics are presented when a score is not finite");
        evaluateJson.Stdout.Should().BeEmpty();
        File.Exists(dir.File("predictions.tsv")).Should().BeFalse("--to is written only when every row was");
    }
}
