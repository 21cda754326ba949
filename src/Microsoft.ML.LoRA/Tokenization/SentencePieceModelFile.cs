using System.Buffers.Binary;
using System.Text;
using Microsoft.ML.LoRA.Checkpoints;

namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>
/// The fields of a SentencePiece model file (tokenizer.model, spm.model: a serialized <c>ModelProto</c> of
/// sentencepiece_model.proto) that tokenization needs: every piece with its score and
/// type, the special pieces and the normalizer spec with its precompiled charsmap. Read with a small protobuf reader
/// that checks every length, so a damaged file is a <see cref="CheckpointFormatException"/> naming the field.
/// </summary>
/// <remarks>
/// Field numbers (sentencepiece_model.proto): ModelProto pieces = 1, trainer_spec = 2, normalizer_spec = 3;
/// SentencePiece piece = 1, score = 2 (float), type = 3 (NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, UNUSED 5,
/// BYTE 6); TrainerSpec model_type = 3 (UNIGRAM 1, BPE 2, WORD 3, CHAR 4), treat_whitespace_as_suffix = 24,
/// byte_fallback = 35, unk_id = 40, bos_id = 41, eos_id = 42, pad_id = 43, unk_piece = 45, bos_piece = 46,
/// eos_piece = 47, pad_piece = 48; NormalizerSpec name = 1, precompiled_charsmap = 2, add_dummy_prefix = 3,
/// remove_extra_whitespaces = 4, escape_whitespaces = 5. Absent fields take the proto's defaults.
/// </remarks>
internal sealed class SentencePieceModelFile
{
    public const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6;
    public const int Unigram = 1, Bpe = 2;

    /// <summary>Largest model file read (real ones are 0.5 to 5 MB).</summary>
    public const long MaxBytes = 256L * 1024 * 1024;

    public required string Path { get; init; }
    public List<(string Piece, float Score, int Type)> Pieces { get; } = new();
    public int ModelType { get; private set; } = Unigram;
    public bool ByteFallback { get; private set; }
    public bool TreatWhitespaceAsSuffix { get; private set; }
    public int UnkId { get; private set; }
    public int BosId { get; private set; } = 1;
    public int EosId { get; private set; } = 2;
    public int PadId { get; private set; } = -1;
    public string UnkPiece { get; private set; } = "<unk>";
    public string BosPiece { get; private set; } = "<s>";
    public string EosPiece { get; private set; } = "</s>";
    public string PadPiece { get; private set; } = "<pad>";
    public string NormalizerName { get; private set; } = "";
    public byte[] PrecompiledCharsmap { get; private set; } = [];
    public bool AddDummyPrefix { get; private set; } = true;
    public bool RemoveExtraWhitespaces { get; private set; } = true;
    public bool EscapeWhitespaces { get; private set; } = true;

    public string ModelTypeName => ModelType switch { Unigram => "Unigram", Bpe => "BPE", 3 => "WORD", 4 => "CHAR", _ => $"type {ModelType}" };

    /// <summary>The piece with this id, or null when the id is outside the vocabulary.</summary>
    public string? PieceOf(int id) => id >= 0 && id < Pieces.Count ? Pieces[id].Piece : null;

    /// <summary>
    /// Reads a model from its bytes (at most <see cref="MaxBytes"/>: the caller checks the size before reading);
    /// <paramref name="path"/> names it in messages.
    /// </summary>
    public static SentencePieceModelFile Read(byte[] data, string path)
    {
        var model = new SentencePieceModelFile { Path = path };
        var reader = new Reader(data, path, "ModelProto");
        while (reader.Next(out int field, out int wire))
        {
            switch (field)
            {
                case 1 when wire == 2: model.ReadPiece(reader.Message($"pieces[{model.Pieces.Count}]")); break;
                case 2 when wire == 2: model.ReadTrainerSpec(reader.Message("trainer_spec")); break;
                case 3 when wire == 2: model.ReadNormalizerSpec(reader.Message("normalizer_spec")); break;
                default: reader.Skip(wire); break;
            }
        }
        if (model.Pieces.Count == 0) throw new CheckpointFormatException(path, "has no pieces (not a SentencePiece model?)");
        return model;
    }

    void ReadPiece(Reader r)
    {
        string? piece = null;
        float score = 0;
        int type = Normal;
        while (r.Next(out int field, out int wire))
        {
            switch (field)
            {
                case 1 when wire == 2: piece = r.String(); break;
                case 2 when wire == 5: score = r.Float(); break;
                case 3 when wire == 0: type = (int)r.Varint(); break;
                default: r.Skip(wire); break;
            }
        }
        if (string.IsNullOrEmpty(piece)) throw new CheckpointFormatException(Path, $"{r.Field} has no piece text");
        if (type is < Normal or > Byte) throw new CheckpointFormatException(Path, $"{r.Field} ('{piece}') has unknown type {type}");
        Pieces.Add((piece, score, type));
    }

    void ReadTrainerSpec(Reader r)
    {
        while (r.Next(out int field, out int wire))
        {
            switch (field)
            {
                case 3 when wire == 0: ModelType = (int)r.Varint(); break;
                case 24 when wire == 0: TreatWhitespaceAsSuffix = r.Varint() != 0; break;
                case 35 when wire == 0: ByteFallback = r.Varint() != 0; break;
                case 40 when wire == 0: UnkId = (int)(long)r.Varint(); break;
                case 41 when wire == 0: BosId = (int)(long)r.Varint(); break;
                case 42 when wire == 0: EosId = (int)(long)r.Varint(); break;
                case 43 when wire == 0: PadId = (int)(long)r.Varint(); break;
                case 45 when wire == 2: UnkPiece = r.String(); break;
                case 46 when wire == 2: BosPiece = r.String(); break;
                case 47 when wire == 2: EosPiece = r.String(); break;
                case 48 when wire == 2: PadPiece = r.String(); break;
                default: r.Skip(wire); break;
            }
        }
    }

    void ReadNormalizerSpec(Reader r)
    {
        while (r.Next(out int field, out int wire))
        {
            switch (field)
            {
                case 1 when wire == 2: NormalizerName = r.String(); break;
                case 2 when wire == 2: PrecompiledCharsmap = r.Bytes().ToArray(); break;
                case 3 when wire == 0: AddDummyPrefix = r.Varint() != 0; break;
                case 4 when wire == 0: RemoveExtraWhitespaces = r.Varint() != 0; break;
                case 5 when wire == 0: EscapeWhitespaces = r.Varint() != 0; break;
                default: r.Skip(wire); break;
            }
        }
    }

    /// <summary>A protobuf message reader over a byte range; every error names the file and the message.</summary>
    sealed class Reader
    {
        readonly byte[] _data;
        readonly int _end;
        readonly string _path;
        int _position;

        public Reader(byte[] data, string path, string field, int start = 0, int end = -1)
        {
            _data = data;
            _path = path;
            Field = field;
            _position = start;
            _end = end < 0 ? data.Length : end;
        }

        public string Field { get; }

        CheckpointFormatException Problem(string problem) =>
            new(_path, $"is not a valid SentencePiece model: {Field} {problem} (at byte {_position})");

        public bool Next(out int field, out int wire)
        {
            field = wire = 0;
            if (_position >= _end) return false;
            ulong tag = Varint();
            field = (int)(tag >> 3);
            wire = (int)(tag & 7);
            if (field == 0) throw Problem("has a field numbered 0");
            return true;
        }

        public ulong Varint()
        {
            ulong value = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (_position >= _end) throw Problem("ends inside a varint");
                byte b = _data[_position++];
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return value;
            }
            throw Problem("has a varint longer than 10 bytes");
        }

        public ReadOnlySpan<byte> Bytes()
        {
            ulong length = Varint();
            if (length > (ulong)(_end - _position)) throw Problem($"has a {length}-byte field past the end of its message");
            var span = _data.AsSpan(_position, (int)length);
            _position += (int)length;
            return span;
        }

        public string String()
        {
            var bytes = Bytes();
            try { return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes); }
            catch (DecoderFallbackException) { throw Problem("has a string that is not UTF-8"); }
        }

        public float Float()
        {
            if (_end - _position < 4) throw Problem("ends inside a float");
            float value = BinaryPrimitives.ReadSingleLittleEndian(_data.AsSpan(_position, 4));
            _position += 4;
            return value;
        }

        public Reader Message(string field)
        {
            ulong length = Varint();
            if (length > (ulong)(_end - _position)) throw Problem($"has a {length}-byte {field} past the end of its message");
            var reader = new Reader(_data, _path, $"{(Field == "ModelProto" ? "" : Field + ".")}{field}", _position, _position + (int)length);
            _position += (int)length;
            return reader;
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: Advance(8); break;
                case 2: Bytes(); break;
                case 5: Advance(4); break;
                default: throw Problem($"has wire type {wire}, which SentencePiece models never use");
            }
        }

        void Advance(int count)
        {
            if (_end - _position < count) throw Problem("ends inside a fixed-size field");
            _position += count;
        }
    }
}
