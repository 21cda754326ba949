using System.CommandLine;

namespace Microsoft.ML.LoRA.Cli.Options;

/// <summary>The --labels option (number of classes), a whole number of at least 1.</summary>
internal static class LabelsOption
{
    public static Option<int?> Create(string description)
    {
        var option = new Option<int?>("--labels")
        {
            Description = description,
            HelpName = "N",
            CustomParser = ValueParsers.OptionalInt("--labels", min: 1),
        };
        return option;
    }
}
