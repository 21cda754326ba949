using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.LoRA.MLNet;

/// <summary>
/// Finds the ML.NET environment behind a trainers catalog (<c>mlContext.MulticlassClassification.Trainers</c>).
/// ML.NET keeps it in an internal property; extension trainers outside Microsoft's assemblies can only reach it by
/// reflection. It is used for logging through <c>mlContext.Log</c>.
/// </summary>
internal static class CatalogContext
{
    // An explicit implementation of the internal interface IInternalCatalog: its name carries the interface prefix.
    static readonly PropertyInfo? EnvironmentProperty =
        typeof(TrainCatalogBase.CatalogInstantiatorBase).GetProperties(BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public)
            .FirstOrDefault(p => p.Name == "Environment" || p.Name.EndsWith(".Environment", StringComparison.Ordinal));

    public static IChannelProvider Of(TrainCatalogBase.CatalogInstantiatorBase catalog)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return EnvironmentProperty?.GetValue(catalog) as IChannelProvider
            ?? throw new NotSupportedException("Cannot reach the MLContext behind this catalog in this ML.NET version; construct LoraTextClassificationEstimator with your MLContext instead.");
    }
}
