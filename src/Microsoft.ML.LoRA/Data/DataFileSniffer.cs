using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Microsoft.ML.LoRA.Data;

/// <summary>
/// Works out a data file's layout from its first records: JSON Lines or delimited text, the separator (tab, comma,
/// semicolon or pipe: the one that splits the sampled records into the same number of fields, two or more; the
/// extension's separator wins a tie) and whether the first row is a header (see <see cref="LooksLikeHeader"/>).
/// Reads at most <see cref="SampleChars"/> characters, however big the file is.
/// </summary>
internal static class DataFileSniffer
{
    public const int SampleChars = 256 * 1024;
    public const int SampleRecords = 50;
    static readonly char[] Candidates = { '\t', ',', ';', '|' };
    static readonly Regex HeaderName = new(@"^[\p{L}_][\p{L}\p{N}_ .\-/()]{0,47}$", RegexOptions.Compiled);

    public static TextDataFile Describe(string path, TextDataFileOptions options, IEnumerable<string?> requestedColumns)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Data file not found: {path}", path);
        var full = Path.GetFullPath(path);
        var (sample, complete) = ReadSample(full);
        var format = options.Format != DataFileFormat.Auto ? options.Format : DetectFormat(full, sample);
        return format == DataFileFormat.JsonLines
            ? DescribeJsonLines(full, sample)
            : DescribeDelimited(full, sample, complete, options, requestedColumns);
    }

    static (string Sample, bool Complete) ReadSample(string path)
    {
        using var reader = DataFileStreams.OpenText(path);
        var buffer = new char[SampleChars];
        int total = 0, read;
        try
        {
            while (total < buffer.Length && (read = reader.Read(buffer, total, buffer.Length - total)) > 0) total += read;
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: not a valid gzip file ({e.Message})", e);
        }
        bool complete = total < buffer.Length || reader.Peek() < 0;
        return (new string(buffer, 0, total), complete);
    }

    static DataFileFormat DetectFormat(string path, string sample)
    {
        var ext = Path.GetExtension(DataFileStreams.NameWithoutGzip(path)).ToLowerInvariant();
        if (ext is ".jsonl" or ".ndjson" or ".json") return DataFileFormat.JsonLines;
        return sample.TrimStart().StartsWith('{') ? DataFileFormat.JsonLines : DataFileFormat.Delimited;
    }

    static TextDataFile DescribeJsonLines(string path, string sample)
    {
        var first = sample.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0)
            ?? throw new InvalidDataException($"{path} is empty");
        JsonElement root;
        try
        {
            using var doc = JsonDocument.Parse(first);
            root = doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: the first line is not a JSON object ({e.Message}); JSON Lines files hold one object per line");
        }
        if (root.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{path}: the first line is a JSON {root.ValueKind.ToString().ToLowerInvariant()}, not an object; JSON Lines files hold one object per line");
        return new TextDataFile
        {
            Path = path,
            Format = DataFileFormat.JsonLines,
            Compressed = DataFileStreams.IsGzip(path),
            HasHeader = true,
            Columns = root.EnumerateObject().Select(p => p.Name).ToList(),
        };
    }

    static TextDataFile DescribeDelimited(string path, string sample, bool complete, TextDataFileOptions options, IEnumerable<string?> requested)
    {
        if (sample.Length == 0) throw new InvalidDataException($"{path} is empty");
        char separator = options.Separator ?? DetectSeparator(path, sample, complete, options.AllowQuoting);
        bool quoting = options.AllowQuoting ?? separator != '\t';
        var records = Records(sample, complete, separator, quoting);
        if (records.Count == 0) throw new InvalidDataException($"{path} has no records");
        bool header = options.HasHeader ?? LooksLikeHeader(records, requested);
        int width = header ? records[0].Count : records.Max(r => r.Count);
        var columns = header
            ? records[0].Select((name, i) => name.Trim() is { Length: > 0 } n ? n : i.ToString(CultureInfo.InvariantCulture)).ToList()
            : Enumerable.Range(0, width).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToList();
        return new TextDataFile
        {
            Path = path,
            Format = DataFileFormat.Delimited,
            Compressed = DataFileStreams.IsGzip(path),
            Separator = separator,
            HasHeader = header,
            AllowQuoting = quoting,
            Columns = columns,
        };
    }

    /// <summary>The sampled records, without blank lines and without a last record the sample may have cut short.</summary>
    static List<List<string>> Records(string sample, bool complete, char separator, bool quoting)
    {
        var records = DelimitedRecordReader.ReadAll(sample, separator, quoting, SampleRecords + 1)
            .Where(r => !(r.Count == 1 && r[0].Length == 0)).ToList();
        if (!complete && records.Count > 1) records.RemoveAt(records.Count - 1);
        return records.Take(SampleRecords).ToList();
    }

    static char DetectSeparator(string path, string sample, bool complete, bool? allowQuoting)
    {
        var ext = Path.GetExtension(DataFileStreams.NameWithoutGzip(path)).ToLowerInvariant();
        char? preferred = ext switch { ".tsv" or ".tab" => '\t', ".csv" => ',', ".psv" => '|', _ => null };
        var scored = new List<(char Separator, double Consistency)>();
        foreach (var candidate in Candidates)
        {
            var records = Records(sample, complete, candidate, allowQuoting ?? candidate != '\t');
            if (records.Count == 0) continue;
            var mode = records.GroupBy(r => r.Count).OrderByDescending(g => g.Count()).ThenByDescending(g => g.Key).First();
            double consistency = (double)mode.Count() / records.Count;
            if (mode.Key >= 2 && consistency >= 0.9) scored.Add((candidate, consistency));
        }
        if (scored.Count == 0) return preferred ?? '\t'; // one column: the separator never occurs
        if (preferred is { } p && scored.Any(s => s.Separator == p)) return p;
        return scored.OrderByDescending(s => s.Consistency).First().Separator;
    }

    /// <summary>
    /// The first record is taken for a header when (in this order): it holds a column name the caller asked for; or a
    /// column is numeric in every later record but not in the first; not when one of its values recurs in the same
    /// column further down (a label such as "ham"); otherwise when every field looks like a column name (a short word
    /// or phrase starting with a letter).
    /// </summary>
    public static bool LooksLikeHeader(IReadOnlyList<List<string>> records, IEnumerable<string?> requested)
    {
        var first = records[0];
        var names = requested.Where(r => r is not null && !int.TryParse(r, NumberStyles.None, CultureInfo.InvariantCulture, out _)).ToList();
        if (names.Any(n => first.Any(f => string.Equals(f.Trim(), n, StringComparison.OrdinalIgnoreCase)))) return true;
        var rest = records.Skip(1).ToList();
        for (int j = 0; j < first.Count && rest.Count > 0; j++)
        {
            if (IsNumber(first[j])) continue;
            if (rest.All(r => j < r.Count && IsNumber(r[j]))) return true;
        }
        for (int j = 0; j < first.Count; j++)
        {
            if (rest.Any(r => j < r.Count && r[j] == first[j])) return false;
        }
        return first.All(f => HeaderName.IsMatch(f.Trim()));
    }

    static bool IsNumber(string s) =>
        double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out _);
}
