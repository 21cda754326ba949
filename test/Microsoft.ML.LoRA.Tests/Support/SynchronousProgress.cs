namespace Microsoft.ML.LoRA.Tests.Support;

/// <summary>An IProgress that calls back on the reporting thread (Progress&lt;T&gt; posts asynchronously).</summary>
public sealed class SynchronousProgress<T>(Action<T> handler) : IProgress<T>
{
    public void Report(T value) => handler(value);
}
