using System.Buffers.Binary;
using System.Text;

namespace Microsoft.ML.LoRA.Tests.Tokenization;

/// <summary>
/// Writes a SentencePiece model file (a serialized <c>ModelProto</c>) by hand, as protobuf: each field is a varint tag
/// (field number &lt;&lt; 3 | wire type) followed by a varint (wire type 0), a varint length and bytes (2), or four
/// little-endian bytes (5). Field numbers from sentencepiece_model.proto:
/// ModelProto: pieces = 1 (repeated SentencePiece), trainer_spec = 2, normalizer_spec = 3.
/// SentencePiece: piece = 1 (string), score = 2 (float), type = 3 (enum: NORMAL 1, UNKNOWN 2, CONTROL 3,
/// USER_DEFINED 4, UNUSED 5, BYTE 6).
/// TrainerSpec: model_type = 3 (UNIGRAM 1, BPE 2), byte_fallback = 35, unk_id = 40, bos_id = 41, eos_id = 42,
/// pad_id = 43 (int32: -1 is a ten-byte varint), unk_piece = 45, bos_piece = 46, eos_piece = 47, pad_piece = 48.
/// NormalizerSpec: name = 1, precompiled_charsmap = 2 (bytes), add_dummy_prefix = 3, remove_extra_whitespaces = 4,
/// escape_whitespaces = 5.
/// </summary>
internal sealed class SentencePieceModelWriter
{
    public const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6;
    public const int Unigram = 1, Bpe = 2;

    public List<(string Piece, float Score, int Type)> Pieces { get; } = new();
    public int ModelType { get; init; } = Unigram;
    public bool ByteFallback { get; init; }
    public int UnkId { get; init; }
    public int BosId { get; init; } = 1;
    public int EosId { get; init; } = 2;
    public int PadId { get; init; } = -1;
    public string UnkPiece { get; init; } = "<unk>";
    public string BosPiece { get; init; } = "<s>";
    public string EosPiece { get; init; } = "</s>";
    public string PadPiece { get; init; } = "<pad>";
    public string NormalizerName { get; init; } = "identity";
    public byte[] Charsmap { get; init; } = [];
    public bool AddDummyPrefix { get; init; } = true;
    public bool RemoveExtraWhitespaces { get; init; } = true;
    public bool EscapeWhitespaces { get; init; } = true;

    public byte[] ToBytes()
    {
        var model = new Message();
        foreach (var (piece, score, type) in Pieces)
        {
            var p = new Message();
            p.String(1, piece);
            p.Float(2, score);
            p.Varint(3, (ulong)type);
            model.Bytes(1, p.ToArray());
        }
        var trainer = new Message();
        trainer.Varint(3, (ulong)ModelType);
        trainer.Varint(35, ByteFallback ? 1UL : 0UL);
        trainer.Varint(40, (ulong)(long)UnkId);
        trainer.Varint(41, (ulong)(long)BosId);
        trainer.Varint(42, (ulong)(long)EosId);
        trainer.Varint(43, (ulong)(long)PadId);
        trainer.String(45, UnkPiece);
        trainer.String(46, BosPiece);
        trainer.String(47, EosPiece);
        trainer.String(48, PadPiece);
        model.Bytes(2, trainer.ToArray());
        var normalizer = new Message();
        normalizer.String(1, NormalizerName);
        if (Charsmap.Length > 0) normalizer.Bytes(2, Charsmap);
        normalizer.Varint(3, AddDummyPrefix ? 1UL : 0UL);
        normalizer.Varint(4, RemoveExtraWhitespaces ? 1UL : 0UL);
        normalizer.Varint(5, EscapeWhitespaces ? 1UL : 0UL);
        model.Bytes(3, normalizer.ToArray());
        return model.ToArray();
    }

    public void Write(string path) => File.WriteAllBytes(path, ToBytes());

    sealed class Message
    {
        readonly MemoryStream _bytes = new();

        void Raw(ulong value)
        {
            while (value >= 0x80)
            {
                _bytes.WriteByte((byte)(value | 0x80));
                value >>= 7;
            }
            _bytes.WriteByte((byte)value);
        }

        void Tag(int field, int wire) => Raw((ulong)(field << 3 | wire));

        public void Varint(int field, ulong value)
        {
            Tag(field, 0);
            Raw(value);
        }

        public void Bytes(int field, byte[] value)
        {
            Tag(field, 2);
            Raw((ulong)value.Length);
            _bytes.Write(value);
        }

        public void String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

        public void Float(int field, float value)
        {
            Tag(field, 5);
            Span<byte> four = stackalloc byte[4];
            BinaryPrimitives.WriteSingleLittleEndian(four, value);
            _bytes.Write(four);
        }

        public byte[] ToArray() => _bytes.ToArray();
    }
}

/// <summary>
/// Builds a SentencePiece <c>precompiled_charsmap</c> for a few rules: a little-endian uint32 trie size, a Darts
/// double-array trie over the rules' UTF-8 keys, then the NUL-terminated replacements (a rule's value is its
/// replacement's offset). Each trie node gets its own 256-unit block, so a child with label b sits at block + b and the
/// node's value at block + 0. A unit holds its label in bits 0-7, "has a value" in bit 8 and the XOR offset from its
/// position to its children's block in bits 10-30; a value unit has bit 31 set and the value below it.
/// </summary>
internal static class CharsmapBuilder
{
    sealed class Node
    {
        public SortedDictionary<byte, Node> Children { get; } = new();
        public int? Value;
        public int Block;
    }

    public static byte[] Build(IReadOnlyDictionary<string, string> rules)
    {
        var strings = new MemoryStream();
        var root = new Node();
        foreach (var (key, replacement) in rules)
        {
            var node = root;
            foreach (var b in Encoding.UTF8.GetBytes(key))
            {
                if (!node.Children.TryGetValue(b, out var child)) node.Children[b] = child = new Node();
                node = child;
            }
            node.Value = (int)strings.Length;
            strings.Write(Encoding.UTF8.GetBytes(replacement));
            strings.WriteByte(0);
        }
        var order = new List<Node>();
        var queue = new Queue<Node>([root]);
        while (queue.Count > 0)
        {
            var node = queue.Dequeue();
            node.Block = 256 * (order.Count + 1);
            order.Add(node);
            foreach (var child in node.Children.Values) queue.Enqueue(child);
        }
        var units = new uint[256 * (order.Count + 1)];
        units[0] = (uint)root.Block << 10;
        foreach (var node in order)
        {
            if (node.Value is int value) units[node.Block] = 0x8000_0000u | (uint)value;
            foreach (var (label, child) in node.Children)
            {
                int position = node.Block + label;
                units[position] = (uint)(position ^ child.Block) << 10 | (child.Value is null ? 0u : 1u << 8) | label;
            }
        }
        var blob = new byte[4 + 4 * units.Length + strings.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(blob, (uint)(4 * units.Length));
        for (int i = 0; i < units.Length; i++) BinaryPrimitives.WriteUInt32LittleEndian(blob.AsSpan(4 + 4 * i), units[i]);
        strings.ToArray().CopyTo(blob, 4 + 4 * units.Length);
        return blob;
    }
}
