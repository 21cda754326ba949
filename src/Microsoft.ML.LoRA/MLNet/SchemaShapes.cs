using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.LoRA.MLNet;

/// <summary>
/// Builds <see cref="SchemaShape.Column"/> values. ML.NET keeps that struct's constructor internal, so a third-party
/// estimator cannot describe its output columns through public API; we call the internal constructor by reflection
/// (checked by a test against the pinned ML.NET version, and failing with a clear message if it changes).
/// </summary>
internal static class SchemaShapes
{
    static readonly ConstructorInfo? ColumnCtor = typeof(SchemaShape.Column).GetConstructor(
        BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public, null,
        new[] { typeof(string), typeof(SchemaShape.Column.VectorKind), typeof(DataViewType), typeof(bool), typeof(SchemaShape) }, null);

    public static SchemaShape.Column Column(string name, SchemaShape.Column.VectorKind kind, DataViewType itemType, bool isKey, SchemaShape? annotations = null)
    {
        if (ColumnCtor is null)
            throw new NotSupportedException("This ML.NET version does not expose SchemaShape.Column's constructor; GetOutputSchema(SchemaShape) is unavailable. Fit the estimator and use the transformer's GetOutputSchema(DataViewSchema) instead.");
        return (SchemaShape.Column)ColumnCtor.Invoke(new object?[] { name, kind, itemType, isKey, annotations });
    }

    static readonly MethodInfo? CreateFromSchema = typeof(SchemaShape).GetMethod("Create",
        BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public, null, new[] { typeof(DataViewSchema) }, null);

    /// <summary>The shape of a schema (ML.NET's SchemaShape.Create is internal).</summary>
    public static SchemaShape FromSchema(DataViewSchema schema) =>
        (SchemaShape)(CreateFromSchema ?? throw new NotSupportedException("SchemaShape.Create is not available in this ML.NET version."))
            .Invoke(null, new object[] { schema })!;

    /// <summary>Finds a column by name (SchemaShape's own lookup is internal).</summary>
    public static bool TryFind(this SchemaShape shape, string name, out SchemaShape.Column column)
    {
        foreach (var c in shape)
        {
            if (c.Name == name) { column = c; return true; }
        }
        column = default;
        return false;
    }

    /// <summary>A copy of <paramref name="input"/> with <paramref name="added"/> replacing same-named columns.</summary>
    public static SchemaShape With(SchemaShape input, IEnumerable<SchemaShape.Column> added)
    {
        var columns = input.ToDictionary(c => c.Name);
        foreach (var c in added) columns[c.Name] = c;
        return new SchemaShape(columns.Values);
    }
}
