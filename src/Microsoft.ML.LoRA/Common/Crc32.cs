using System.Buffers.Binary;

namespace Microsoft.ML.LoRA;

/// <summary>
/// CRC-32 as zip files record it (IEEE 802.3, reflected polynomial 0xEDB88320), computed eight bytes at a time
/// (slicing-by-8, about 1-2 GB/s) so that checking a multi-gigabyte entry costs little next to reading it.
/// </summary>
internal sealed class Crc32
{
    const uint Polynomial = 0xEDB88320u;
    static readonly uint[] Table = BuildTable();
    uint _state = 0xFFFFFFFFu;

    /// <summary>The CRC of everything appended so far.</summary>
    public uint Value => ~_state;

    /// <summary>Adds <paramref name="data"/> to the checksum.</summary>
    public void Append(ReadOnlySpan<byte> data)
    {
        var t = Table;
        uint crc = _state;
        int i = 0;
        for (; data.Length - i >= 8; i += 8)
        {
            uint one = BinaryPrimitives.ReadUInt32LittleEndian(data[i..]) ^ crc;
            uint two = BinaryPrimitives.ReadUInt32LittleEndian(data[(i + 4)..]);
            crc = t[0x700 + (one & 0xFF)] ^ t[0x600 + ((one >> 8) & 0xFF)] ^ t[0x500 + ((one >> 16) & 0xFF)] ^ t[0x400 + (one >> 24)]
                ^ t[0x300 + (two & 0xFF)] ^ t[0x200 + ((two >> 8) & 0xFF)] ^ t[0x100 + ((two >> 16) & 0xFF)] ^ t[two >> 24];
        }
        for (; i < data.Length; i++) crc = t[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
        _state = crc;
    }

    /// <summary>The CRC-32 of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data)
    {
        var crc = new Crc32();
        crc.Append(data);
        return crc.Value;
    }

    static uint[] BuildTable()
    {
        var t = new uint[8 * 256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? Polynomial ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        for (int i = 0; i < 256; i++)
            for (int k = 1; k < 8; k++)
                t[k * 256 + i] = (t[(k - 1) * 256 + i] >> 8) ^ t[t[(k - 1) * 256 + i] & 0xFF];
        return t;
    }
}
