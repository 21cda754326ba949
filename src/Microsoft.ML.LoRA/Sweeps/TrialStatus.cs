namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>How a trial ended.</summary>
public enum TrialStatus
{
    /// <summary>Trained, evaluated and saved.</summary>
    Succeeded,
    /// <summary>Training diverged (the loss became NaN or infinite); no model. Ranked after every successful trial.</summary>
    Failed,
}
