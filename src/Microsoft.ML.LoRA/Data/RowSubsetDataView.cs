using System.Collections;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.LoRA.Data;

/// <summary>
/// The rows of another data view whose positions (0-based, in the source's order) are set in a mask, in their
/// original order. It streams: each cursor walks the source and skips the rows left out.
/// </summary>
internal sealed class RowSubsetDataView : IDataView
{
    readonly IDataView _source;
    readonly BitArray _keep;
    readonly long _count;

    public RowSubsetDataView(IDataView source, BitArray keep)
    {
        _source = source;
        _keep = keep;
        _count = keep.Cast<bool>().LongCount(k => k);
    }

    public bool CanShuffle => false;

    public DataViewSchema Schema => _source.Schema;

    public long? GetRowCount() => _count;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) =>
        new Cursor(_source.GetRowCursor(columnsNeeded), _keep);

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        new[] { GetRowCursor(columnsNeeded, rand) };

    sealed class Cursor : DataViewRowCursor
    {
        readonly DataViewRowCursor _input;
        readonly BitArray _keep;
        long _position = -1;

        public Cursor(DataViewRowCursor input, BitArray keep)
        {
            _input = input;
            _keep = keep;
        }

        public override DataViewSchema Schema => _input.Schema;
        public override long Position => _position;
        public override long Batch => 0;

        public override bool MoveNext()
        {
            while (_input.MoveNext())
            {
                long row = _input.Position;
                if (row >= _keep.Length)
                    throw new InvalidOperationException("the data changed since it was split: it has more rows than when the split was made");
                if (_keep[(int)row])
                {
                    _position++;
                    return true;
                }
            }
            return false;
        }

        public override bool IsColumnActive(DataViewSchema.Column column) => _input.IsColumnActive(column);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) => _input.GetGetter<TValue>(column);

        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();

        protected override void Dispose(bool disposing)
        {
            if (disposing) _input.Dispose();
            base.Dispose(disposing);
        }
    }
}
