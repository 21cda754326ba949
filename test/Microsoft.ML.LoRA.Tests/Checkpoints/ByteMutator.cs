using System.Text;
using System.Text.RegularExpressions;

namespace Microsoft.ML.LoRA.Tests.Checkpoints;

/// <summary>Deterministic mutations of a byte string for fuzz tests (a seeded <see cref="Random"/> drives them).</summary>
public sealed class ByteMutator(int seed)
{
    public Random Random { get; } = new(seed);

    /// <summary>Numbers worth trying wherever a file holds a count, a size or an offset.</summary>
    public static readonly string[] InterestingNumbers =
    {
        "0", "1", "-1", "2", "7", "8", "-8", "255", "256", "65535", "65536", "2147483647", "2147483648", "-2147483648",
        "4294967295", "4294967296", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
        "18446744073709551615", "18446744073709551616", "99999999999999999999999", "1.5", "-0", "1e3", "1e308", "1e400",
    };

    /// <summary>Flips 1 to 4 random bits, within [<paramref name="from"/>, <paramref name="to"/>) when given.</summary>
    public byte[] FlipBits(byte[] data, int from = 0, int to = -1)
    {
        var copy = (byte[])data.Clone();
        if (copy.Length == 0) return copy;
        if (to < 0 || to > copy.Length) to = copy.Length;
        if (from >= to) from = 0;
        int flips = Random.Next(1, 5);
        for (int i = 0; i < flips; i++)
        {
            int at = Random.Next(from, to);
            copy[at] ^= (byte)(1 << Random.Next(8));
        }
        return copy;
    }

    /// <summary>Keeps a random prefix (possibly empty).</summary>
    public byte[] Truncate(byte[] data) => data[..Random.Next(data.Length)];

    /// <summary>Inserts 1 to 16 random (or JSON/pickle-significant) bytes at a random position in [from, to].</summary>
    public byte[] InsertGarbage(byte[] data, int from = 0, int to = -1)
    {
        if (to < 0 || to > data.Length) to = data.Length;
        if (from > to) from = 0;
        int at = Random.Next(from, to + 1);
        var garbage = new byte[Random.Next(1, 17)];
        const string significant = "{}[]\",:0123456789-.eE \\\n(tuqhjXKJMR.";
        for (int i = 0; i < garbage.Length; i++)
            garbage[i] = Random.Next(2) == 0 ? (byte)Random.Next(256) : (byte)significant[Random.Next(significant.Length)];
        return [.. data.AsSpan(0, at), .. garbage, .. data.AsSpan(at)];
    }

    /// <summary>Removes a random range of 1 to 32 bytes.</summary>
    public byte[] DeleteRange(byte[] data, int from = 0, int to = -1)
    {
        if (data.Length == 0) return data;
        if (to < 0 || to > data.Length) to = data.Length;
        if (from >= to) from = 0;
        int at = Random.Next(from, to);
        int count = Math.Min(Random.Next(1, 33), data.Length - at);
        return [.. data.AsSpan(0, at), .. data.AsSpan(at + count)];
    }

    /// <summary>Copies a random slice of the text over another place in it (duplicated keys, entries, brackets).</summary>
    public string DuplicateSlice(string text)
    {
        if (text.Length < 2) return text;
        int start = Random.Next(text.Length - 1);
        int length = Random.Next(1, Math.Min(80, text.Length - start) + 1);
        int at = Random.Next(text.Length + 1);
        return text.Insert(at, text.Substring(start, length));
    }

    /// <summary>Replaces one number in a JSON text by an interesting one, or nudges it by a small amount.</summary>
    public string EditNumber(string text)
    {
        var numbers = Regex.Matches(text, @"-?\d+(\.\d+)?([eE][-+]?\d+)?");
        if (numbers.Count == 0) return text;
        var target = numbers[Random.Next(numbers.Count)];
        string replacement = Random.Next(3) == 0 && long.TryParse(target.Value, out var v)
            ? (v + Random.Next(-9, 10)).ToString()
            : InterestingNumbers[Random.Next(InterestingNumbers.Length)];
        return text[..target.Index] + replacement + text[(target.Index + target.Length)..];
    }

    /// <summary>Replaces one JSON string by another plausible or hostile one.</summary>
    public string EditString(string text)
    {
        var strings = Regex.Matches(text, "\"[^\"]*\"");
        if (strings.Count == 0) return text;
        var target = strings[Random.Next(strings.Count)];
        string[] candidates =
        {
            "\"F32\"", "\"F16\"", "\"BF16\"", "\"F64\"", "\"I64\"", "\"I32\"", "\"I8\"", "\"U8\"", "\"BOOL\"", "\"F8_E5M2\"", "\"\"",
            "\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"__metadata__\"", "\"shap\"", "[]", "{}", "null", "0", "[0, 0]",
            "\"" + new string('x', Random.Next(1, 300)) + "\"",
        };
        return text[..target.Index] + candidates[Random.Next(candidates.Length)] + text[(target.Index + target.Length)..];
    }

    /// <summary>ASCII/UTF-8 round trip helpers for header texts.</summary>
    public static string Text(byte[] bytes) => Encoding.UTF8.GetString(bytes);

    public static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);
}
