namespace Microsoft.ML.LoRA.Training;

/// <summary>The loss became NaN or infinite; training stopped without producing a model.</summary>
public sealed class TrainingDivergedException : InvalidOperationException
{
    public TrainingDivergedException(string message) : base(message) { }
}
