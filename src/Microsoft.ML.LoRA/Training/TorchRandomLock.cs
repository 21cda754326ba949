namespace Microsoft.ML.LoRA.Training;

/// <summary>
/// libtorch has one process-wide random generator (weight initialisation, dropout). A run that must be reproducible
/// holds this lock from seeding to the end of training, so concurrent fits in one process cannot draw from the
/// generator in between. It is a Monitor lock, so the same thread may take it again (estimator, then trainer).
/// </summary>
public static class TorchRandomLock
{
    public static readonly object Sync = new();
}
