namespace Microsoft.ML.LoRA.Models.Quantization;

/// <summary>
/// The scale (absolute maximum) of each block of a 4-bit weight as dequantizing reads it: stored in fp32, or
/// double-quantized and read back as bitsandbytes does, map[code]·second-level absmax + mean, in float.
/// </summary>
internal readonly unsafe struct BlockScales
{
    readonly float* _absmax;
    readonly byte* _codes;
    readonly float* _secondAbsmax;
    readonly float* _map;
    readonly float _offset;

    /// <summary>Scales kept in fp32, one a block.</summary>
    public BlockScales(float* absmax) => _absmax = absmax;

    /// <summary>
    /// Double-quantized scales: 8-bit <paramref name="codes"/> into <paramref name="map"/> (the dynamic map, fixed by
    /// the caller), one <paramref name="secondAbsmax"/> per 256 codes, and the <paramref name="offset"/> subtracted
    /// before they were quantized.
    /// </summary>
    public BlockScales(byte* codes, float* secondAbsmax, float* map, float offset)
    {
        _codes = codes;
        _secondAbsmax = secondAbsmax;
        _map = map;
        _offset = offset;
    }

    /// <summary>The scale of block <paramref name="block"/>.</summary>
    public float this[long block] => _absmax != null
        ? _absmax[block]
        : _map[_codes[block]] * _secondAbsmax[block / DoubleQuantization.BlockSize] + _offset;
}
