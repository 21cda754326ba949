using Microsoft.ML;

namespace Microsoft.ML.LoRA.Persistence;

/// <summary><c>mlContext.Model</c> entry points for pipelines that contain a LoRA classifier.</summary>
public static class LoraModelOperationsExtensions
{
    /// <summary>
    /// Saves the whole fitted pipeline (ML.NET stages before and after the LoRA classifier, and the classifier's
    /// adapter, head, tokenizer and base-model reference) to one file. Atomic: a failed save leaves an existing file intact.
    /// </summary>
    public static void SaveWithLora(this ModelOperationsCatalog catalog, ITransformer model, DataViewSchema inputSchema, string path, LoraSaveOptions? options = null) =>
        LoraModelFile.Save(catalog, model, inputSchema, path, options);

    /// <summary>
    /// Loads a file written by <see cref="SaveWithLora"/>. Unless the base weights were embedded, the base checkpoint
    /// must be where it was (or at <see cref="LoraLoadOptions.BaseModelPath"/>) with unchanged weights (checked by SHA-256).
    /// </summary>
    public static ITransformer LoadWithLora(this ModelOperationsCatalog catalog, string path, out DataViewSchema inputSchema, LoraLoadOptions? options = null) =>
        LoraModelFile.Load(catalog, path, out inputSchema, options);
}
