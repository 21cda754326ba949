using TorchSharp;

namespace Microsoft.ML.LoRA;

/// <summary>
/// TorchSharp turns numbers passed to tensor methods (<c>t.ne(0)</c>, <c>t.mul_(0.5)</c>, the hidden alpha of
/// <c>t.add_(u)</c>) into temporary native <see cref="Scalar"/> objects that nothing keeps alive during the native call;
/// under garbage-collection pressure the finalizer can free one while libtorch reads it, which aborts or crashes the
/// process. Library code passes Scalars that stay reachable: these cached constants, or a <c>using Scalar s = value;</c> local.
/// </summary>
internal static class Scalars
{
    public static readonly Scalar Zero = 0;
    public static readonly Scalar One = 1;
}
