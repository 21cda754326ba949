using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.LoRA.MLNet;

/// <summary>
/// Row-at-a-time scoring for <c>PredictionEngine</c>: the output row passes the input columns through and computes
/// the score columns from the current input row's scored columns (text, pair, adapter name) the first time one of
/// them is read.
/// </summary>
internal sealed class ScoringRowMapper : IRowToRowMapper
{
    readonly IRowScorer _transformer;

    public ScoringRowMapper(IRowScorer transformer, DataViewSchema inputSchema)
    {
        _transformer = transformer;
        InputSchema = inputSchema;
        OutputSchema = transformer.GetOutputSchema(inputSchema);
    }

    public DataViewSchema InputSchema { get; }

    public DataViewSchema OutputSchema { get; }

    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
    {
        var columns = dependingColumns.ToList();
        var result = columns.Where(c => c.Index < InputSchema.Count).Select(c => InputSchema[c.Index]).ToList();
        if (columns.Any(c => c.Index >= InputSchema.Count)) result.AddRange(_transformer.InputColumnsOf(InputSchema));
        return result.DistinctBy(c => c.Index).ToList();
    }

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns) =>
        new ScoredRow(this, input, activeColumns.Select(c => c.Index).ToHashSet());

    sealed class ScoredRow : DataViewRow
    {
        readonly ScoringRowMapper _mapper;
        readonly DataViewRow _input;
        readonly HashSet<int> _active;
        readonly Func<ScoringInput> _readInput;
        long _cachedPosition = -1;
        ScoringInput _cachedInput;
        float[] _cached = Array.Empty<float>();

        public ScoredRow(ScoringRowMapper mapper, DataViewRow input, HashSet<int> active)
        {
            _mapper = mapper;
            _input = input;
            _active = active;
            _readInput = mapper._transformer.InputReader(input);
        }

        public override DataViewSchema Schema => _mapper.OutputSchema;
        public override long Position => _input.Position;
        public override long Batch => _input.Batch;
        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) =>
            column.Index < _mapper.InputSchema.Count ? _input.IsColumnActive(_input.Schema[column.Index]) : _active.Contains(column.Index);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            int inputCount = _mapper.InputSchema.Count;
            if (column.Index < inputCount) return _input.GetGetter<TValue>(_input.Schema[column.Index]);
            var getter = _mapper._transformer.Scores.Getter(column.Index - inputCount, Logits);
            return getter as ValueGetter<TValue>
                ?? throw new InvalidOperationException($"Column '{column.Name}' has type {column.Type}, not {typeof(TValue).Name}.");
        }

        // Score columns of one row share one model call; the cache is keyed by position and input, since a
        // PredictionEngine may reuse a row object for a new example.
        float[] Logits()
        {
            var input = _readInput();
            if (_cachedPosition == _input.Position && _cachedInput == input && _cached.Length > 0) return _cached;
            _cached = _mapper._transformer.Logits(new[] { input })[0];
            _cachedPosition = _input.Position;
            _cachedInput = input;
            return _cached;
        }
    }
}
