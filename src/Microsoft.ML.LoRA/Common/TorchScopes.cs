using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA;

/// <summary>
/// TorchSharp does not keep a tensor's wrapper alive for the length of its own native call, so a temporary that
/// becomes unreachable during a call (<c>torch.empty(n).normal_()</c>, <c>p.detach().clone()</c>) can be freed by the
/// finalizer thread while libtorch still uses it, which crashes the process. Inside a dispose scope every tensor is
/// held by the scope, so the library does its tensor work in scopes; these helpers keep the results that must outlive them.
/// </summary>
internal static class TorchScopes
{
    /// <summary>
    /// Builds a module inside a dispose scope; the module's parameters and buffers are detached from the scope (they
    /// live as long as the module), every temporary made while building is disposed.
    /// </summary>
    public static T Build<T>(Func<T> create) where T : nn.Module
    {
        using var scope = torch.NewDisposeScope();
        var module = create();
        KeepModule(scope, module);
        return module;
    }

    /// <summary>Runs <paramref name="change"/> on a module in a dispose scope, keeping the module's (possibly new) parameters and buffers.</summary>
    public static void Change(nn.Module module, Action change)
    {
        using var scope = torch.NewDisposeScope();
        change();
        KeepModule(scope, module);
    }

    /// <summary>Runs <paramref name="work"/> in a dispose scope and keeps the tensors it returns.</summary>
    public static Dictionary<string, Tensor> Keep(Func<Dictionary<string, Tensor>> work)
    {
        using var scope = torch.NewDisposeScope();
        var result = work();
        scope.Detach(result.Values);
        return result;
    }

    static void KeepModule(DisposeScope scope, nn.Module module)
    {
        scope.Detach(module.parameters());
        scope.Detach(module.buffers());
    }
}
