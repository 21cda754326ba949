namespace Microsoft.ML.LoRA.MLNet;

/// <summary>Turns the user's model argument (a folder, later also a Hub id) into a local folder.</summary>
internal static class BaseModelResolver
{
    public static string Resolve(string modelPath) => modelPath;
}
