using Microsoft.ML;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Persistence;
using Microsoft.ML.LoRA.Tests.Persistence;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Cli;

/// <summary>
/// Loading a model.zip writes none of its parts to disk but ML.NET's: lora evaluate and predict create nothing in the
/// temporary folder except the folder ML.NET's own model loader extracts the pipeline stages to (ml_dotnet_*). Only a
/// file with embedded base weights gets a scratch folder of ours (lora-*), which also shows that the check sees one.
/// </summary>
public class ModelLoadDiskTests(TrainedSpamPipeline trained) : IClassFixture<TrainedSpamPipeline>
{
    static bool IsMlNets(string name) => name.StartsWith("ml_dotnet_", StringComparison.Ordinal);

    [Fact]
    public async Task Loading_a_LoRA_model_writes_nothing_of_ours_to_the_temp_folder_and_an_embedded_base_alone_is_extracted()
    {
        using var dir = new TempDir();
        var model = dir.File("model.zip");
        var embedded = dir.File("embedded.zip");
        var ml = new MLContext();
        ml.Model.SaveWithLora(trained.Model, trained.Train.Schema, model);
        ml.Model.SaveWithLora(trained.Model, trained.Train.Schema, embedded, new LoraSaveOptions { EmbedBaseModel = true });
        var data = dir.File("data.tsv");
        File.WriteAllLines(data, new[] { "Label\tText", "ham\thello there", "spam\twin a free prize now" });

        var evaluate = await ProcessRun.LoraWatchingTempFolder("evaluate", "--model", model, "--data", data, "--json");
        var predict = await ProcessRun.LoraWatchingTempFolder("predict", "--model", model, "--data", data, "--to", dir.File("predictions.tsv"));
        var withBase = await ProcessRun.LoraWatchingTempFolder("evaluate", "--model", embedded, "--data", data, "--json");

        foreach (var (result, _) in new[] { evaluate, predict, withBase }) result.ExitCode.Should().Be(ExitCodes.Success, result.Stderr);
        evaluate.Created.Should().Contain(n => IsMlNets(n), "the watcher sees what ML.NET's loader creates");
        evaluate.Created.Should().OnlyContain(n => IsMlNets(n), "the adapter, tokenizer and manifest are read in memory");
        predict.Created.Should().OnlyContain(n => IsMlNets(n));
        withBase.Created.Where(n => !IsMlNets(n)).Should().ContainSingle().Which.Should().StartWith("lora-", "embedded base weights go to a scratch folder");
    }
}
