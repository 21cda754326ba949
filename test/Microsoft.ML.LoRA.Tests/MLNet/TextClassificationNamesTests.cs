using Microsoft.ML;
using Microsoft.ML.LoRA.MLNet;

namespace Microsoft.ML.LoRA.Tests.MLNet;

/// <summary>The names of ML.NET's TextClassification trainer reach the same settings, so switching trainers is a rename.</summary>
public class TextClassificationNamesTests
{
    sealed class Row
    {
        public string Label { get; set; } = "";
        public string Text { get; set; } = "";
    }

    [Fact]
    public void The_catalog_takes_TextClassification_argument_names()
    {
        var ml = new MLContext();
        var validation = ml.Data.LoadFromEnumerable(new[] { new Row() });

        var options = ml.MulticlassClassification.Trainers.LoraTextClassifier(modelPath: "model", labelColumnName: "Sentiment",
            scoreColumnName: "Scores", outputColumnName: "Predicted", sentence1ColumnName: "Review", sentence2ColumnName: "Title",
            batchSize: 32, maxEpochs: 10, validationSet: validation).Options;

        options.LabelColumnName.Should().Be("Sentiment");
        options.TextColumnName.Should().Be("Review");
        options.TextPairColumnName.Should().Be("Title");
        options.ScoreColumnName.Should().Be("Scores");
        options.PredictedLabelColumnName.Should().Be("Predicted");
        options.BatchSize.Should().Be(32);
        options.Epochs.Should().Be(10);
        options.ValidationSet.Should().BeSameAs(validation);
    }

    [Fact]
    public void The_options_properties_of_TextClassification_are_other_names_of_ours()
    {
        var options = new LoraTextClassifierOptions { Sentence1ColumnName = "Review", Sentence2ColumnName = "Title", PredictionColumnName = "Predicted", MaxEpochs = 7 };

        options.TextColumnName.Should().Be("Review");
        options.TextPairColumnName.Should().Be("Title");
        options.PredictedLabelColumnName.Should().Be("Predicted");
        options.Epochs.Should().Be(7);
    }

    [Fact]
    public void Two_names_of_one_setting_must_agree()
    {
        var ml = new MLContext();

        var columns = () => ml.MulticlassClassification.Trainers.LoraTextClassifier("model", textColumnName: "Body", sentence1ColumnName: "Review");
        var epochs = () => ml.BinaryClassification.Trainers.LoraTextClassifier("model", epochs: 2, maxEpochs: 5);

        columns.Should().Throw<ArgumentException>().WithMessage("*textColumnName 'Body'*sentence1ColumnName 'Review'*");
        epochs.Should().Throw<ArgumentException>().WithMessage("*epochs (2)*maxEpochs (5)*");
        ml.MulticlassClassification.Trainers.LoraTextClassifier("model", textColumnName: "Review", sentence1ColumnName: "Review").Options.TextColumnName.Should().Be("Review");
    }
}
