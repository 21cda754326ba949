using System.Reflection;
using TorchSharp;
using Xunit.Sdk;

namespace Microsoft.ML.LoRA.Tests.Support;

/// <summary>
/// Runs every test inside a TorchSharp dispose scope. TorchSharp does not keep a tensor wrapper alive during its own
/// native call, so a temporary in a chain such as <c>(a - b).abs().max()</c> can be freed by the finalizer while
/// libtorch still uses it; a scope holds every tensor the test makes until the test ends (see the library's TorchScopes).
/// </summary>
[AttributeUsage(AttributeTargets.Assembly | AttributeTargets.Class | AttributeTargets.Method)]
public sealed class TorchScopePerTestAttribute : BeforeAfterTestAttribute
{
    [ThreadStatic] static Stack<DisposeScope>? _scopes;

    public override void Before(MethodInfo methodUnderTest)
    {
        (_scopes ??= new Stack<DisposeScope>()).Push(torch.NewDisposeScope());
    }

    public override void After(MethodInfo methodUnderTest)
    {
        // An async test may finish on another thread; its scope then stays with the thread that made it.
        if (_scopes is { Count: > 0 } scopes) scopes.Pop().Dispose();
    }
}
