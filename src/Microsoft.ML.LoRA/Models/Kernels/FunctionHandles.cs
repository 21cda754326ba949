using System.Collections.Concurrent;
using System.Reflection;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models.Kernels;

/// <summary>
/// Releases the tensor handles a TorchSharp custom autograd function (<c>torch.autograd.Function</c>) would otherwise
/// keep past their use: the forward call's own handle on its output and the placeholder TorchSharp caches beside it,
/// and the gradients a backward call hands to libtorch. Left to the training step's dispose scope, each would hold its
/// tensor for the rest of the step. One forward call at a time per thread: release it as soon as <c>apply</c> returns.
/// </summary>
internal static class FunctionHandles
{
    [ThreadStatic] static Tensor? _forwardOutput;
    [ThreadStatic] static torch.autograd.AutogradContext? _context;

    // TorchSharp's Function keeps, for as long as the node lives, an uninitialised tensor shaped like each output
    // (torch.empty_like), to hand backward zeros for an output that received no gradient. With materialize_grads
    // off it is never read, so it is released as soon as apply returns: kept, it holds a tensor the size of each
    // output for the rest of the step, which shows in a LoRA step's peak memory
    // (measured: docs/benchmarks.md, "Why the kernels are built as they are"). TorchSharp 0.107 keeps it in
    // AutogradContext._node._outputCache; a version without those fields just keeps it (memory, not correctness).
    const BindingFlags Private = BindingFlags.NonPublic | BindingFlags.Instance;
    static readonly FieldInfo? NodeField = typeof(torch.autograd.AutogradContext).GetField("_node", Private);
    // On TorchSharp's internal Node<T>, one field per function type T, found from its first node.
    static readonly ConcurrentDictionary<Type, FieldInfo?> OutputCacheFields = new();

    /// <summary>
    /// Returns <paramref name="output"/>, remembered as the forward call's handle for <see cref="ReleaseForwardOutput"/>
    /// (libtorch hands the caller of apply a handle of its own). The forward call must turn materialize_grads off.
    /// </summary>
    public static Tensor KeepForwardOutput(torch.autograd.AutogradContext ctx, Tensor output)
    {
        _forwardOutput?.Dispose();
        _forwardOutput = output;
        _context = ctx;
        return output;
    }

    /// <summary>
    /// Returns <paramref name="handle"/>, to be released by <see cref="ReleaseForwardOutput"/>: for a tensor the forward
    /// call creates only to save for the backward pass. TorchSharp turns the saved tensors into libtorch's saved
    /// variables after forward returns, so the handle must live until then, and no longer.
    /// </summary>
    public static Tensor KeepUntilApplyReturns(Tensor handle)
    {
        (_savedHandles ??= new List<Tensor>()).Add(handle);
        return handle;
    }

    [ThreadStatic] static List<Tensor>? _savedHandles;

    /// <summary>
    /// Releases what the last forward call on this thread kept beyond its use: its output handle, the cache and the
    /// handles of <see cref="KeepUntilApplyReturns"/>.
    /// </summary>
    public static void ReleaseForwardOutput()
    {
        _forwardOutput?.Dispose();
        _forwardOutput = null;
        Release(ref _savedHandles);
        if (_context is not null && NodeField?.GetValue(_context) is { } node
            && OutputCacheFields.GetOrAdd(node.GetType(), type => type.GetField("_outputCache", Private))?.GetValue(node) is List<Tensor> cache)
        {
            foreach (var placeholder in cache) placeholder?.Dispose();
            cache.Clear();
        }
        _context = null;
    }

    /// <summary>
    /// Disposes the gradients a backward call returned last time (libtorch keeps its own references once the call
    /// returns); call at the start of the next backward call of the same function on the same thread.
    /// </summary>
    public static void Release(ref List<Tensor>? returned)
    {
        if (returned is null) return;
        foreach (var t in returned) t.Dispose();
        returned = null;
    }
}
