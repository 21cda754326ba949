using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Sweeps;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Sweeps;

/// <summary>Mistakes a sweep reports before training anything (and before writing to its folder).</summary>
public class SweepPreflightTests
{
    readonly MLContext _ml = new(seed: 1);
    static readonly LoraTextClassifierOptions Base = new() { ModelPath = "no-model-is-loaded-before-these-checks", Epochs = 1, Lora = new LoraOptions() };

    sealed class TextOnly
    {
        public string Text { get; set; } = "";
    }

    IDataView Rows(int count) => _ml.Data.LoadFromEnumerable(TextData.SmsSpam(0, count));

    Action Run(TempDir dir, IDataView train, IDataView validation, SweepMetric metric = SweepMetric.Accuracy, LoraSearchSpace? space = null) => () =>
        SweepRunner.Run(_ml, SweepPipelines.Multiclass(_ml), Base, train, validation, new SweepOptions
        {
            OutputFolder = Path.Combine(dir.Path, "sweep"), Metric = metric,
            SearchSpace = space ?? new LoraSearchSpace { Ranks = new[] { 2, 4 } },
        });

    [Fact]
    public void A_binary_only_metric_on_a_multiclass_pipeline_is_refused()
    {
        using var dir = new TempDir();

        Run(dir, Rows(20), Rows(10), SweepMetric.Auc).Should().Throw<ArgumentException>().WithMessage("The metric Auc needs a binary classifier*multiclass*Use Accuracy, MacroAccuracy or LogLoss*");
        Run(dir, Rows(20), Rows(10), SweepMetric.F1).Should().Throw<ArgumentException>().WithMessage("The metric F1 needs a binary classifier*");
        Directory.Exists(Path.Combine(dir.Path, "sweep")).Should().BeFalse("nothing is written before the checks pass");
    }

    [Fact]
    public void A_validation_set_without_the_label_column_is_refused()
    {
        using var dir = new TempDir();
        var unlabelled = _ml.Data.LoadFromEnumerable(new[] { new TextOnly { Text = "hello" } });

        Run(dir, Rows(20), unlabelled).Should().Throw<ArgumentException>().WithMessage("The validation data does not fit the pipeline*'Label'*");
    }

    [Fact]
    public void Empty_validation_data_an_empty_space_and_a_missing_folder_are_refused()
    {
        using var dir = new TempDir();

        Run(dir, Rows(20), Rows(0)).Should().Throw<ArgumentException>().WithMessage("The validation data has no rows*");
        Run(dir, Rows(20), Rows(10), space: new LoraSearchSpace()).Should().Throw<ArgumentException>().WithMessage("The search space is empty*");
        var noFolder = () => SweepRunner.Run(_ml, SweepPipelines.Multiclass(_ml), Base, Rows(20), Rows(10), new SweepOptions { SearchSpace = new LoraSearchSpace { Ranks = new[] { 2 } } });
        noFolder.Should().Throw<ArgumentException>().WithMessage("OutputFolder is required*");
    }

    [Fact]
    public void A_pipeline_without_a_lora_classifier_is_refused()
    {
        using var dir = new TempDir();
        var run = () => SweepRunner.Run(_ml, _ => _ml.Transforms.Conversion.MapValueToKey("Label"), Base, Rows(20), Rows(10),
            new SweepOptions { OutputFolder = dir.File("sweep"), SearchSpace = new LoraSearchSpace { Ranks = new[] { 2 } } });

        run.Should().Throw<ArgumentException>().WithMessage("The pipeline's output has no score column 'Score'*LoraTextClassifier(options)*");
    }
}
