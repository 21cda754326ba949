namespace Microsoft.ML.LoRA;

/// <summary>
/// libtorch has one process-wide random generator (weight initialisation, dropout). A run that must be reproducible
/// holds this lock from seeding to the end of training, so concurrent fits in one process cannot draw from the
/// generator in between. The library's module constructors and adapter/head initialisers take it around their own
/// draws too, so building a model on another thread waits for a running fit instead of shifting its random stream.
/// It is a Monitor lock, so the same thread may take it again (estimator, then trainer).
/// </summary>
public static class TorchRandomLock
{
    public static readonly object Sync = new();
}
