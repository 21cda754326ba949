using System.Text;

namespace Microsoft.ML.LoRA.Tests.Checkpoints;

/// <summary>Builds safetensors files byte by byte, so tests can write headers no writer would produce.</summary>
public static class SafeTensorsBytes
{
    /// <summary>An 8-byte little-endian length (the header's, unless <paramref name="declaredLength"/> overrides it), the header, then the data.</summary>
    public static byte[] Build(byte[] header, byte[] data, ulong? declaredLength = null)
    {
        var bytes = new byte[8 + header.Length + data.Length];
        BitConverter.GetBytes(declaredLength ?? (ulong)header.Length).CopyTo(bytes, 0);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    /// <summary>A file from a JSON header text and <paramref name="dataBytes"/> bytes of data (0, 1, 2, ...).</summary>
    public static byte[] Build(string headerJson, int dataBytes, ulong? declaredLength = null) =>
        Build(Encoding.UTF8.GetBytes(headerJson), Enumerable.Range(0, dataBytes).Select(i => (byte)i).ToArray(), declaredLength);

    /// <summary>A one-tensor header: <c>{"t": {"dtype": ..., "shape": ..., "data_offsets": ...}}</c> from raw JSON fragments.</summary>
    public static string OneTensor(string dtype = "\"F32\"", string shape = "[2, 2]", string offsets = "[0, 16]") =>
        $"{{\"t\": {{\"dtype\": {dtype}, \"shape\": {shape}, \"data_offsets\": {offsets}}}}}";
}
