using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Data;

namespace Microsoft.ML.LoRA.Tests.Data;

/// <summary>Reads the columns of a loaded data view back as strings.</summary>
public static class DataViewRows
{
    public static List<string> Texts(IDataView data) => Column(data, LabeledTextColumns.Text);

    public static List<string> Labels(IDataView data) => Column(data, LabeledTextColumns.Label);

    public static List<string> Column(IDataView data, string name) => data.GetColumn<string>(name).ToList();
}
