using System.IO.Compression;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Tests.Checkpoints;

/// <summary>pytorch_model.bin files written by torch.save read as the same tensors as their safetensors twins.</summary>
public sealed class PyTorchBinSourceTests : IDisposable
{
    readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    static void AssertSameTensors(PyTorchBinSource bin, string safetensorsPath)
    {
        var reference = SafeTensorsFile.Open(safetensorsPath);
        bin.Names.Should().BeEquivalentTo(reference.Entries.Select(e => e.Name));
        foreach (var entry in reference.Entries)
        {
            bin.Shape(entry.Name).Should().Equal(entry.Shape, entry.Name);
            using var expected = reference.ReadRaw(entry.Name);
            using var actual = bin.ReadRaw(entry.Name);
            TensorAssert.Identical(actual, expected, entry.Name);
        }
    }

    [Fact]
    public void Bin_and_safetensors_of_the_tiny_bert_hold_identical_tensors()
    {
        using var bin = PyTorchBinSource.Open(Path.Combine(CheckpointAssets.TinyBertBinFolder, "pytorch_model.bin"));

        bin.Names.Should().Contain("bert.encoder.layer.1.output.LayerNorm.weight").And.HaveCount(42);
        AssertSameTensors(bin, CheckpointAssets.TinyBertSafetensors);
    }

    [Fact]
    public void Float16_bfloat16_integer_bool_scalar_and_empty_tensors_match_their_safetensors_twins()
    {
        using var bin = PyTorchBinSource.Open(CheckpointAssets.DTypesBin);

        bin.StoredType("float16").Should().Be(ScalarType.Float16);
        bin.StoredType("bfloat16").Should().Be(ScalarType.BFloat16);
        bin.StoredType("int64").Should().Be(ScalarType.Int64);
        bin.StoredType("bool").Should().Be(ScalarType.Bool);
        bin.Shape("scalar").Should().BeEmpty();
        bin.Shape("empty").Should().Equal(0, 3);
        AssertSameTensors(bin, CheckpointAssets.DTypesSafetensors);
    }

    [Fact]
    public void Int64_values_are_exact()
    {
        using var bin = PyTorchBinSource.Open(CheckpointAssets.DTypesBin);
        using var ints = bin.ReadRaw("int64");

        ints.data<long>().ToArray().Should().Equal(0, -1, 1L << 40, 7, -(1L << 62), 5);
    }

    [Fact]
    public void Transposed_and_sliced_views_of_one_shared_storage_read_as_their_values()
    {
        using var scope = torch.NewDisposeScope();
        using var bin = PyTorchBinSource.Open(CheckpointAssets.DTypesBin);

        var baseMatrix = bin.ReadRaw("shared.base");
        baseMatrix.shape.Should().Equal(4, 6);
        TensorAssert.Identical(bin.ReadRaw("shared.transposed"), baseMatrix.t(), "shared.transposed");
        TensorAssert.Identical(bin.ReadRaw("shared.rows"), baseMatrix.narrow(0, 1, 2), "shared.rows");
        TensorAssert.Identical(bin.ReadRaw("shared.columns"), baseMatrix.index(TensorIndex.Colon, TensorIndex.Slice(2, null, 2)), "shared.columns");
    }

    [Fact]
    public void Tensors_are_read_as_float32_through_ITensorSource()
    {
        using ITensorSource source = PyTorchBinSource.Open(CheckpointAssets.DTypesBin);
        using var half = source.ReadFloat32("float16");
        using var reference = SafeTensorsFile.Open(CheckpointAssets.DTypesSafetensors).ReadFloat32("float16");

        half.dtype.Should().Be(ScalarType.Float32);
        TensorAssert.Identical(half, reference, "float16");
        source.Files.Should().Equal(Path.GetFullPath(CheckpointAssets.DTypesBin));
    }

    [Fact]
    public void A_big_endian_archive_reads_the_same_values()
    {
        using var little = PyTorchBinSource.Open(CheckpointAssets.DTypesBin);
        using var big = PyTorchBinSource.Open(CheckpointAssets.DTypesBigEndianBin);

        foreach (var name in little.Names)
        {
            using var expected = little.ReadRaw(name);
            using var actual = big.ReadRaw(name);
            TensorAssert.Identical(actual, expected, name);
        }
    }

    [Fact]
    public void Deflated_zip_entries_read_the_same_as_stored_ones()
    {
        var deflated = _dir.File("deflated.bin");
        TorchArchive.Rewrite(CheckpointAssets.DTypesBin, deflated, CompressionLevel.Optimal);
        using var stored = PyTorchBinSource.Open(CheckpointAssets.DTypesBin);
        using var compressed = PyTorchBinSource.Open(deflated);

        new FileInfo(deflated).Length.Should().BeLessThan(new FileInfo(CheckpointAssets.DTypesBin).Length, "the entries are compressed");
        foreach (var name in stored.Names)
        {
            using var expected = stored.ReadRaw(name);
            using var actual = compressed.ReadRaw(name);
            TensorAssert.Identical(actual, expected, name);
        }
    }

    [Fact]
    public void The_record_folder_may_have_any_name()
    {
        // torch.save names the folder after the file (pytorch_model/, dtypes/) or "archive/".
        var renamed = _dir.File("renamed.bin");
        TorchArchive.Rewrite(CheckpointAssets.DTypesBin, renamed, CompressionLevel.NoCompression, prefix: "archive");
        using var bin = PyTorchBinSource.Open(renamed);

        AssertSameTensors(bin, CheckpointAssets.DTypesSafetensors);
    }

    [Fact]
    public void The_extra_records_PyTorch_2_writes_are_accepted()
    {
        // PyTorch 2.x adds .format_version, .storage_alignment, byteorder and .data/serialization_id records.
        var entries = TorchArchive.ReadEntries(CheckpointAssets.DTypesBin);
        var prefix = TorchArchive.Prefix(entries);
        entries.Insert(1, ($"{prefix}/.format_version", "1"u8.ToArray()));
        entries.Insert(2, ($"{prefix}/.storage_alignment", "64"u8.ToArray()));
        entries.Insert(3, ($"{prefix}/byteorder", "little"u8.ToArray()));
        entries.Add(($"{prefix}/.data/serialization_id", "1234567890"u8.ToArray()));
        var path = _dir.File("torch2.bin");
        File.WriteAllBytes(path, TorchArchive.Build(entries));

        using var bin = PyTorchBinSource.Open(path);

        AssertSameTensors(bin, CheckpointAssets.DTypesSafetensors);
    }

    [Fact]
    public void Sharded_bin_checkpoint_reads_the_same_tensors_as_the_single_file()
    {
        using var sharded = PyTorchBinSource.OpenIndex(Path.Combine(CheckpointAssets.TinyBertShardedBinFolder, "pytorch_model.bin.index.json"));
        using var single = PyTorchBinSource.Open(Path.Combine(CheckpointAssets.TinyBertBinFolder, "pytorch_model.bin"));

        sharded.Files.Should().HaveCount(2);
        sharded.Names.Should().BeEquivalentTo(single.Names);
        foreach (var name in single.Names)
        {
            sharded.Shape(name).Should().Equal(single.Shape(name), name);
            using var expected = single.ReadFloat32(name);
            using var actual = sharded.ReadFloat32(name);
            TensorAssert.Identical(actual, expected, name);
        }
    }
}
