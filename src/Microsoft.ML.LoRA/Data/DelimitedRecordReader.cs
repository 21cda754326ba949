using System.Text;

namespace Microsoft.ML.LoRA.Data;

/// <summary>
/// Splits delimited text into records, as CSV (RFC 4180) does when quoting is on: a field that starts with a double
/// quote runs to the matching closing quote and may hold separators, line breaks and doubled quotes (""). Used to
/// look at the first records of a file (separator and header detection); the rows themselves are read by ML.NET.
/// </summary>
internal sealed class DelimitedRecordReader
{
    readonly TextReader _reader;
    readonly char _separator;
    readonly bool _quoting;

    public DelimitedRecordReader(TextReader reader, char separator, bool quoting)
    {
        _reader = reader;
        _separator = separator;
        _quoting = quoting;
    }

    /// <summary>The next record's fields, or null at the end. An empty line is a record with one empty field.</summary>
    public List<string>? Read()
    {
        int c = _reader.Read();
        if (c < 0) return null;
        var fields = new List<string>();
        var field = new StringBuilder();
        bool inQuotes = false, fieldStart = true;
        while (true)
        {
            if (c < 0)
            {
                fields.Add(field.ToString());
                return fields;
            }
            char ch = (char)c;
            if (inQuotes)
            {
                if (ch == '"')
                {
                    if (_reader.Peek() == '"') { field.Append('"'); _reader.Read(); }
                    else inQuotes = false;
                }
                else field.Append(ch);
            }
            else if (ch == _separator)
            {
                fields.Add(field.ToString());
                field.Clear();
                fieldStart = true;
                c = _reader.Read();
                continue;
            }
            else if (ch == '\n' || ch == '\r')
            {
                if (ch == '\r' && _reader.Peek() == '\n') _reader.Read();
                fields.Add(field.ToString());
                return fields;
            }
            else if (ch == '"' && fieldStart && _quoting)
            {
                inQuotes = true;
            }
            else field.Append(ch);
            fieldStart = false;
            c = _reader.Read();
        }
    }

    /// <summary>Up to <paramref name="max"/> records from the start of <paramref name="text"/>.</summary>
    public static List<List<string>> ReadAll(string text, char separator, bool quoting, int max)
    {
        var reader = new DelimitedRecordReader(new StringReader(text), separator, quoting);
        var records = new List<List<string>>();
        while (records.Count < max && reader.Read() is { } record) records.Add(record);
        return records;
    }
}
