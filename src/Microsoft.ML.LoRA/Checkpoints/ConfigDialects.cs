namespace Microsoft.ML.LoRA.Checkpoints;

/// <summary>
/// The config.json dialects of the model families, by <c>model_type</c>. The families live above this layer
/// (<c>Models/Families</c>); <c>ModelFamilies</c> registers every one of them here when the assembly loads, so
/// <see cref="TransformerConfig.Load"/> reads any family's config without this layer naming a family.
/// </summary>
public static class ConfigDialects
{
    static readonly List<IConfigDialect> Registered = new();
    static readonly object Sync = new();

    /// <summary>Adds a family's dialect; a model_type another dialect already reads is an error.</summary>
    public static void Register(IConfigDialect dialect)
    {
        ArgumentNullException.ThrowIfNull(dialect);
        lock (Sync)
        {
            if (Registered.Contains(dialect)) return;
            var taken = dialect.ModelTypes.Where(t => Registered.Any(d => d.ModelTypes.Contains(t))).ToList();
            if (taken.Count > 0)
                throw new InvalidOperationException($"model_type {string.Join(", ", taken)} is already read by another family");
            Registered.Add(dialect);
        }
    }

    /// <summary>The dialect that reads <paramref name="modelType"/>, or null.</summary>
    public static IConfigDialect? For(string modelType)
    {
        lock (Sync) return Registered.FirstOrDefault(d => d.ModelTypes.Contains(modelType));
    }

    /// <summary>Every model_type some family reads, in registration order.</summary>
    public static IReadOnlyList<string> ModelTypes
    {
        get { lock (Sync) return Registered.SelectMany(d => d.ModelTypes).ToList(); }
    }
}
