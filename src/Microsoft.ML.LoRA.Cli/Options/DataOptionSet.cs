using System.CommandLine;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Data;

namespace Microsoft.ML.LoRA.Cli.Options;

// ML.NET has a namespace Microsoft.ML.Command, which would hide System.CommandLine.Command here.
using Command = System.CommandLine.Command;

/// <summary>
/// The data options shared by the commands that read a labelled text file (train, evaluate, predict, sweep):
/// --data, the column options, the layout overrides, --validation FILE or --validation-fraction F, and --seed.
/// <see cref="Read"/> gathers them into a <see cref="DataSelection"/>, which loads the data.
/// </summary>
internal sealed class DataOptionSet
{
    /// <summary>Seed used when --seed is not given.</summary>
    public const int DefaultSeed = 42;

    static readonly Dictionary<string, char> SeparatorNames = new(StringComparer.OrdinalIgnoreCase)
    {
        ["tab"] = '\t', ["comma"] = ',', ["semicolon"] = ';', ["pipe"] = '|',
    };

    bool _withLabel = true;

    public Option<string> Data { get; } = new("--data", "-d")
    {
        Description = "Data file: TSV, CSV (with or without header), or JSON Lines; may be gzipped (.gz)",
        HelpName = "FILE",
        Required = true,
    };

    public Option<string> TextColumn { get; } = new("--text-column")
    {
        Description = "Text column: header name or 0-based index [default: the first of " +
                      $"{string.Join(", ", TextDataFileOptions.DefaultTextColumns)}]",
        HelpName = "NAME|INDEX",
    };

    public Option<string> TextPairColumn { get; } = new("--text-pair-column")
    {
        Description = "Second text column, for sentence-pair tasks: header name or 0-based index",
        HelpName = "NAME|INDEX",
    };

    public Option<string> LabelColumn { get; } = new("--label-column")
    {
        Description = "Label column: header name or 0-based index [default: the first of " +
                      $"{string.Join(", ", TextDataFileOptions.DefaultLabelColumns)}]",
        HelpName = "NAME|INDEX",
    };

    public Option<string> Separator { get; } = new Option<string>("--separator")
    {
        Description = "Field separator of a delimited file",
        DefaultValueFactory = _ => "auto",
    }.AcceptOnlyFromAmong("auto", "tab", "comma", "semicolon", "pipe");

    public Option<string> Header { get; } = new Option<string>("--header")
    {
        Description = "Whether the first row of a delimited file is a header",
        DefaultValueFactory = _ => "auto",
    }.AcceptOnlyFromAmong("auto", "yes", "no");

    public Option<string> Validation { get; } = new("--validation")
    {
        Description = "Separate validation file, read with the same column options",
        HelpName = "FILE",
    };

    public Option<double?> ValidationFraction { get; } = new("--validation-fraction")
    {
        Description = "Hold out this share of each label's rows for validation (stratified, seeded), in (0, 1)",
        HelpName = "F",
        CustomParser = ValueParsers.OptionalDouble("--validation-fraction", f => f > 0 && f < 1, "a number between 0 and 1 (exclusive)"),
    };

    public Option<int> Seed { get; } = new("--seed")
    {
        Description = $"Random seed (validation split, shuffling)",
        HelpName = "N",
        DefaultValueFactory = _ => DefaultSeed,
        CustomParser = ValueParsers.AnyInt("--seed"),
    };

    /// <summary>
    /// Adds the options to <paramref name="command"/>. <paramref name="withLabel"/> adds --label-column (not for
    /// predict); <paramref name="withValidation"/> adds --validation and --validation-fraction (train, sweep).
    /// </summary>
    public void AddTo(Command command, bool withLabel = true, bool withValidation = true, bool dataRequired = true)
    {
        _withLabel = withLabel;
        Data.Required = dataRequired;
        command.Options.Add(Data);
        command.Options.Add(TextColumn);
        command.Options.Add(TextPairColumn);
        if (withLabel) command.Options.Add(LabelColumn);
        command.Options.Add(Separator);
        command.Options.Add(Header);
        command.Options.Add(Seed);
        if (!withValidation) return;
        command.Options.Add(Validation);
        command.Options.Add(ValidationFraction);
        command.Validators.Add(result =>
        {
            if (result.GetResult(Validation) is not null && result.GetResult(ValidationFraction) is not null)
                result.AddError("Give either --validation FILE or --validation-fraction F, not both.");
        });
    }

    /// <summary>What the options select; <paramref name="defaultData"/> and <paramref name="defaultValidation"/> stand in when --data / --validation are not given.</summary>
    public DataSelection Read(ParseResult parseResult, string? defaultData = null, string? defaultValidation = null)
    {
        var separator = parseResult.GetValue(Separator) ?? "auto";
        var header = parseResult.GetValue(Header) ?? "auto";
        var file = new TextDataFileOptions
        {
            TextColumn = parseResult.GetValue(TextColumn),
            TextPairColumn = parseResult.GetValue(TextPairColumn),
            LabelColumn = _withLabel ? parseResult.GetValue(LabelColumn) : null,
            ReadLabel = _withLabel,
            Separator = SeparatorNames.TryGetValue(separator, out var c) ? c : null,
            HasHeader = header switch { "yes" => true, "no" => false, _ => null },
        };
        bool dataGiven = parseResult.GetResult(Data) is not null;
        return new DataSelection(
            dataGiven ? parseResult.GetValue(Data)! : defaultData ?? throw new CliUsageException("--data FILE is required."),
            file,
            parseResult.GetResult(Validation) is not null ? parseResult.GetValue(Validation)
                : !dataGiven && parseResult.GetResult(ValidationFraction) is null ? defaultValidation : null,
            parseResult.GetValue(ValidationFraction),
            parseResult.GetValue(Seed));
    }
}
