using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Microsoft.ML.LoRA.Cli.Options;

/// <summary>
/// Parsers for numeric option values that report a bad value as a parse error naming the option and the rule
/// ("--rank must be a whole number of at least 1 (got 'abc')"), so it reaches the user as a usage error (exit 2).
/// Numbers are read in the invariant culture (a dot is the decimal separator).
/// </summary>
internal static class ValueParsers
{
    /// <summary>A whole number of at least <paramref name="min"/>.</summary>
    public static Func<ArgumentResult, int> Int(string option, int min) => result =>
    {
        var token = Token(result);
        if (int.TryParse(token, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) && value >= min) return value;
        result.AddError($"{option} must be a whole number of at least {min} (got '{token}').");
        return default;
    };

    /// <summary>As <see cref="Int"/>, for an optional option.</summary>
    public static Func<ArgumentResult, int?> OptionalInt(string option, int min)
    {
        var parse = Int(option, min);
        return result => parse(result);
    }

    /// <summary>Any whole number (a seed).</summary>
    public static Func<ArgumentResult, int> AnyInt(string option) => result =>
    {
        var token = Token(result);
        if (int.TryParse(token, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value)) return value;
        result.AddError($"{option} must be a whole number (got '{token}').");
        return default;
    };

    /// <summary>A finite number that satisfies <paramref name="valid"/>, which <paramref name="rule"/> describes.</summary>
    public static Func<ArgumentResult, double> Double(string option, Func<double, bool> valid, string rule) => result =>
    {
        var token = Token(result);
        if (double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out double value)
            && double.IsFinite(value) && valid(value)) return value;
        result.AddError($"{option} must be {rule} (got '{token}').");
        return default;
    };

    /// <summary>As <see cref="Double"/>, for an optional option.</summary>
    public static Func<ArgumentResult, double?> OptionalDouble(string option, Func<double, bool> valid, string rule)
    {
        var parse = Double(option, valid, rule);
        return result => parse(result);
    }

    /// <summary>A comma-separated list of whole numbers of at least <paramref name="min"/> ("2,4,8").</summary>
    public static Func<ArgumentResult, int[]?> IntList(string option, int min) => result => List(result, option, t =>
        int.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= min ? v : (int?)null,
        $"whole numbers of at least {min}");

    /// <summary>A comma-separated list of finite numbers satisfying <paramref name="valid"/> ("1e-4,5e-4").</summary>
    public static Func<ArgumentResult, double[]?> DoubleList(string option, Func<double, bool> valid, string rule) => result => List(result, option, t =>
        double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v) && valid(v) ? v : (double?)null,
        rule);

    static T[]? List<T>(ArgumentResult result, string option, Func<string, T?> parse, string rule) where T : struct
    {
        var items = result.Tokens.SelectMany(t => t.Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
        var values = new List<T>();
        foreach (var item in items)
        {
            if (parse(item) is T value) values.Add(value);
            else
            {
                result.AddError($"{option} must be a comma-separated list of {rule} (got '{item}').");
                return null;
            }
        }
        if (values.Count == 0) result.AddError($"{option} needs at least one value.");
        return values.Distinct().ToArray();
    }

    static string Token(ArgumentResult result) => result.Tokens.Count > 0 ? result.Tokens[^1].Value : "";
}
