namespace Microsoft.ML.LoRA.Data;

/// <summary>
/// The lines of a delimited file as ML.NET's <see cref="Microsoft.ML.Data.TextLoader"/> must see them to read every
/// row. TextLoader takes a line that starts with <c>//</c> for a comment wherever it is, and one that starts with
/// <c>#</c> for a comment before the first row (the header, or the first data row), and drops them without a word:
/// a text such as "// TODO" or "#blessed" in the first column would be lost. Such a line gets one leading space here,
/// which TextLoader drops again from the field it starts (it drops every field's leading spaces), so the row is read,
/// with the same values. With quoting on, the lines that continue a quoted field across a line break are passed as
/// they are, so the field keeps its text.
/// </summary>
internal sealed class CommentSafeLineReader : TextReader
{
    readonly TextReader _inner;
    readonly char _separator;
    readonly bool _quoting;
    bool _inQuotes;
    string? _pending;
    int _position;

    public CommentSafeLineReader(TextReader inner, char separator, bool quoting)
    {
        _inner = inner;
        _separator = separator;
        _quoting = quoting;
    }

    public override string? ReadLine()
    {
        if (_pending is not null)
        {
            // The rest of a line partly taken by Read: without its line break.
            var rest = _pending[_position..^1];
            _pending = null;
            return rest;
        }
        var line = _inner.ReadLine();
        return line is null ? null : Transform(line);
    }

    public override int Peek() => Fill() ? _pending![_position] : -1;

    public override int Read() => Fill() ? Take() : -1;

    public override int Read(char[] buffer, int index, int count)
    {
        int n = 0;
        while (n < count && Fill())
        {
            int take = Math.Min(count - n, _pending!.Length - _position);
            _pending.CopyTo(_position, buffer, index + n, take);
            _position += take;
            n += take;
            if (_position >= _pending.Length) _pending = null;
        }
        return n;
    }

    int Take()
    {
        char c = _pending![_position++];
        if (_position >= _pending.Length) _pending = null;
        return c;
    }

    bool Fill()
    {
        if (_pending is not null) return true;
        var line = _inner.ReadLine();
        if (line is null) return false;
        _pending = Transform(line) + "\n";
        _position = 0;
        return true;
    }

    /// <summary>The line with a space in front when it starts a record and TextLoader would take it for a comment.</summary>
    string Transform(string line)
    {
        bool startsRecord = !_inQuotes;
        if (_quoting) Track(line);
        return startsRecord && line.Length > 0 && (line[0] == '#' || (line[0] == '/' && line.Length > 1 && line[1] == '/'))
            ? " " + line
            : line;
    }

    /// <summary>Follows quoted fields through the line (a quote opens one at the start of a field, after any spaces; "" inside is a quote).</summary>
    void Track(string line)
    {
        bool fieldStart = !_inQuotes;
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (_inQuotes)
            {
                if (c != '"') continue;
                if (i + 1 < line.Length && line[i + 1] == '"') i++;
                else _inQuotes = false;
            }
            else if (c == _separator) fieldStart = true;
            else if (c == '"' && fieldStart) { _inQuotes = true; fieldStart = false; }
            else if (c != ' ') fieldStart = false;
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _inner.Dispose();
        base.Dispose(disposing);
    }
}
