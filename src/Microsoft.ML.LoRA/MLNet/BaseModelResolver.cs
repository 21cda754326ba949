using Microsoft.ML.LoRA.Hub;

namespace Microsoft.ML.LoRA.MLNet;

/// <summary>Turns the user's model argument (a local folder or a Hugging Face Hub id) into a local folder.</summary>
internal static class BaseModelResolver
{
    public static string Resolve(string modelPath, HubOptions? hub) => Path.GetFullPath(ModelLocator.Resolve(modelPath, hub));
}
