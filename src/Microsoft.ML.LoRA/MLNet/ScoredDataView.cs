using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.LoRA.MLNet;

/// <summary>
/// The lazy output of a scoring stage's Transform (<see cref="LoraTextClassificationTransformer"/>,
/// <see cref="LoraAdapterSetTransformer"/>): the input's columns plus the score columns. Nothing is computed until a cursor moves; then rows are scored a window at a time (one model batch or a
/// few), so any size of input streams through in bounded memory.
/// </summary>
internal sealed class ScoredDataView : IDataView
{
    readonly IDataView _input;
    readonly IRowScorer _transformer;

    public ScoredDataView(IRowScorer transformer, IDataView input)
    {
        _transformer = transformer;
        _input = input;
        Schema = transformer.GetOutputSchema(input.Schema);
    }

    public DataViewSchema Schema { get; }

    public bool CanShuffle => false;

    public long? GetRowCount() => _input.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var needed = columnsNeeded.Select(c => c.Index).ToHashSet();
        int inputCount = _input.Schema.Count;
        var inputNeeded = needed.Where(i => i < inputCount).Select(i => _input.Schema[i]).ToList();
        bool scoresNeeded = needed.Any(i => i >= inputCount);
        var main = _input.GetRowCursor(inputNeeded);
        DataViewRowCursor? ahead = scoresNeeded ? _input.GetRowCursor(_transformer.InputColumnsOf(_input.Schema)) : null;
        return new ScoredCursor(this, _transformer, main, ahead, needed, inputCount);
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        new[] { GetRowCursor(columnsNeeded, rand) };

    /// <summary>
    /// Walks the input with one cursor for pass-through columns and a second one that reads the scored columns a window
    /// ahead and scores them; both see the same rows in the same order.
    /// </summary>
    sealed class ScoredCursor : DataViewRowCursor
    {
        readonly ScoredDataView _view;
        readonly IRowScorer _transformer;
        readonly DataViewRowCursor _main;
        readonly DataViewRowCursor? _ahead;
        readonly HashSet<int> _active;
        readonly int _inputCount;
        readonly Func<ScoringInput>? _readInput;
        float[][] _window = Array.Empty<float[]>();
        long _windowStart;   // row number of _window[0]
        long _row = -1;      // row number of the current row

        public ScoredCursor(ScoredDataView view, IRowScorer transformer, DataViewRowCursor main,
            DataViewRowCursor? ahead, HashSet<int> active, int inputCount)
        {
            _view = view;
            _transformer = transformer;
            _main = main;
            _ahead = ahead;
            _active = active;
            _inputCount = inputCount;
            if (ahead is not null) _readInput = transformer.InputReader(ahead);
        }

        public override DataViewSchema Schema => _view.Schema;
        public override long Position => _main.Position;
        public override long Batch => _main.Batch;
        public override ValueGetter<DataViewRowId> GetIdGetter() => _main.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) =>
            column.Index < _inputCount ? _main.IsColumnActive(_main.Schema[column.Index]) : _active.Contains(column.Index);

        public override bool MoveNext()
        {
            if (!PipelineExceptions.Unwrapping(_main.MoveNext)) return false;
            _row++;
            return true;
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index < _inputCount) return _main.GetGetter<TValue>(_main.Schema[column.Index]);
            if (!_active.Contains(column.Index))
                throw new InvalidOperationException($"Column '{column.Name}' was not requested when the cursor was created.");
            var getter = _transformer.Scores.Getter(column.Index - _inputCount, CurrentLogits);
            return getter as ValueGetter<TValue>
                ?? throw new InvalidOperationException($"Column '{column.Name}' has type {column.Type}, not {typeof(TValue).Name}.");
        }

        float[] CurrentLogits()
        {
            if (_row < 0) throw new InvalidOperationException("The cursor is not on a row; call MoveNext first.");
            while (_row >= _windowStart + _window.Length) FillWindow();
            return _window[_row - _windowStart];
        }

        void FillWindow()
        {
            var rows = new List<ScoringInput>();
            long start = _windowStart + _window.Length;
            int size = _transformer.ScoringWindow;
            while (rows.Count < size && PipelineExceptions.Unwrapping(_ahead!.MoveNext)) rows.Add(_readInput!());
            if (rows.Count == 0)
                throw new InvalidOperationException("The input yielded fewer rows to a second cursor than to the first; Transform needs an input that can be read twice in the same order.");
            try { _window = _transformer.Logits(rows); }
            catch (Inference.NonFiniteScoreException e) { throw e.InRowsFrom(start); }
            _windowStart = start;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _main.Dispose();
                _ahead?.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
