using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Persistence;

namespace Microsoft.ML.LoRA.Tests.Support;

/// <summary>
/// The small TREC-6 fit several tests run on the pre-trained BERT (300 training questions, 5 epochs, r = 8): fitted,
/// scored on the 500 test questions, saved to a model file and loaded again. Dispose it to free both models.
/// </summary>
public sealed class TrecFit : IDisposable
{
    TrecFit(LoraTextClassificationTransformer fitted, LoraTextClassificationTransformer loaded, double accuracy, float[] scores, float[] loadedScores)
    {
        (Fitted, Loaded, Accuracy, Scores, LoadedScores) = (fitted, loaded, accuracy, scores, loadedScores);
    }

    /// <summary>The LoRA stage of the fitted pipeline.</summary>
    public LoraTextClassificationTransformer Fitted { get; }
    /// <summary>The LoRA stage of the pipeline loaded from the saved model file.</summary>
    public LoraTextClassificationTransformer Loaded { get; }
    /// <summary>Micro accuracy of the fitted pipeline on the test questions.</summary>
    public double Accuracy { get; }
    /// <summary>Every score of the fitted pipeline on the test questions, row after row.</summary>
    public float[] Scores { get; }
    /// <summary>The same from the loaded pipeline.</summary>
    public float[] LoadedScores { get; }

    /// <summary>The options of the fit over <paramref name="model"/>, with <paramref name="lora"/> (default: r = 8, alpha = 16).</summary>
    public static LoraTextClassifierOptions Options(string model, LoraOptions? lora = null) => new()
    {
        ModelPath = model, Epochs = 5, BatchSize = 16, LearningRate = 2e-3, MaxSequenceLength = 32, Seed = 1,
        Lora = lora ?? new LoraOptions { Rank = 8, Alpha = 16 },
    };

    /// <summary>Fits with <paramref name="options"/>, scores, saves into <paramref name="folder"/> and loads again.</summary>
    public static TrecFit Run(LoraTextClassifierOptions options, string folder)
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TextData.Trec("train_5500.label", 300));
        var test = ml.Data.LoadFromEnumerable(TextData.Trec("TREC_10.label", 500));
        var fitted = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.LoraTextClassifier(options)).Fit(train);
        var scored = fitted.Transform(test);
        double accuracy = ml.MulticlassClassification.Evaluate(scored).MicroAccuracy;
        var path = Path.Combine(folder, "model.zip");
        ml.Model.SaveWithLora(fitted, train.Schema, path);
        var loaded = ml.Model.LoadWithLora(path, out _);
        return new TrecFit(PipelineStages.LoraStage(fitted), PipelineStages.LoraStage(loaded), accuracy,
            ScoresOf(scored), ScoresOf(loaded.Transform(test)));
    }

    static float[] ScoresOf(IDataView scored) => scored.GetColumn<float[]>("Score").SelectMany(s => s).ToArray();

    public void Dispose()
    {
        Fitted.Dispose();
        Loaded.Dispose();
    }
}
