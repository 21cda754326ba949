using Microsoft.ML;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.LoRA.MLNet;

/// <summary>Writes messages to <c>mlContext.Log</c> through a channel, as ML.NET's own trainers do.</summary>
internal sealed class MLContextLog : IDisposable
{
    readonly IChannel _channel;

    public MLContextLog(IChannelProvider context, string source)
    {
        _channel = context.Start(source);
    }

    public void Info(string message) => _channel.Info(MessageSensitivity.None, message.Replace("{", "{{").Replace("}", "}}"));

    public void Warning(string message) => _channel.Warning(MessageSensitivity.None, message.Replace("{", "{{").Replace("}", "}}"));

    public void Dispose() => _channel.Dispose();
}
