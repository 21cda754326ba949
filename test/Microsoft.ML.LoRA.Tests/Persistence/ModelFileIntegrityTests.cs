using System.IO.Compression;
using System.Security.Cryptography;
using Microsoft.ML;
using Microsoft.ML.LoRA.Persistence;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Persistence;

/// <summary>
/// A saved model.zip is checked as it loads: every entry against the zip's CRC-32 and the manifest's size and SHA-256,
/// sizes bounded before and while inflating, odd entry names refused; each failure names the file and the entry.
/// </summary>
public class ModelFileIntegrityTests(TrainedSpamPipeline trained) : IClassFixture<TrainedSpamPipeline>
{
    const string Adapter = "adapter/adapter_model.safetensors";

    string SaveModel(TempDir dir, string name = "model.zip")
    {
        var path = dir.File(name);
        new MLContext().Model.SaveWithLora(trained.Model, trained.Train.Schema, path);
        return path;
    }

    static ModelFileException LoadFails(string path)
    {
        var act = () => new MLContext().Model.LoadWithLora(path, out _);
        return act.Should().Throw<ModelFileException>().Which;
    }

    [Fact]
    public void The_manifest_records_the_size_and_sha256_of_every_other_entry()
    {
        using var dir = new TempDir();
        var path = SaveModel(dir);

        var manifest = LoraModelFile.ReadManifest(path);

        using var zip = ZipFile.OpenRead(path);
        var others = zip.Entries.Select(e => e.FullName).Where(n => n != "lora-model.json").ToList();
        others.Should().Contain(new[] { "pipeline/before.zip", "pipeline/after.zip", Adapter, "tokenizer/vocab.txt", "base/config.json" });
        manifest.Entries!.Keys.Should().BeEquivalentTo(others);
        foreach (var name in others)
        {
            var bytes = ModelZipSurgery.Read(path, name);
            manifest.Entries[name].Size.Should().Be(bytes.Length);
            manifest.Entries[name].Sha256.Should().Be(Convert.ToHexStringLower(SHA256.HashData(bytes)), name);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Flipped_bytes_in_a_stored_entry_fail_the_crc_check_naming_file_and_entry(bool entryTable)
    {
        using var dir = new TempDir();
        var path = SaveModel(dir);
        if (!entryTable)
        {
            ModelZipSurgery.StripEntryTable(path, dir.File("old.zip"));
            path = dir.File("old.zip");
        }
        ModelZipSurgery.FlipStoredBytes(path, Adapter, 1000);

        var error = LoadFails(path);

        error.Path.Should().Be(path);
        error.Entry.Should().Be(Adapter);
        error.Message.Should().StartWith($"{path}, entry {Adapter}: ").And.Contain("CRC-32");
    }

    [Fact]
    public void Nan_weights_with_a_consistent_crc_fail_the_sha256_check()
    {
        using var dir = new TempDir();
        var path = SaveModel(dir);
        var nan = BitConverter.GetBytes(float.NaN);
        ModelZipSurgery.Rewrite(path, dir.File("nan.zip"), (name, bytes) =>
        {
            if (name != Adapter) return bytes;
            for (int i = bytes.Length - 64; i < bytes.Length; i += 4) nan.CopyTo(bytes, i);
            return bytes;
        });

        var error = LoadFails(dir.File("nan.zip"));

        error.Entry.Should().Be(Adapter);
        error.Message.Should().Contain("SHA-256").And.Contain("damaged or altered after saving");
    }

    [Fact]
    public void A_file_saved_before_the_entry_table_still_loads_with_identical_scores()
    {
        using var dir = new TempDir();
        var path = SaveModel(dir);
        ModelZipSurgery.StripEntryTable(path, dir.File("old.zip"));
        var ml = new MLContext();

        var loaded = ml.Model.LoadWithLora(dir.File("old.zip"), out _);

        LoraModelFile.ReadManifest(dir.File("old.zip")).Entries.Should().BeNull();
        Scores(ml, loaded).Should().Equal(Scores(ml, trained.Model));
    }

    [Fact]
    public void An_entry_added_after_saving_or_one_the_manifest_lists_but_the_zip_lacks_is_refused()
    {
        using var dir = new TempDir();
        var path = SaveModel(dir);
        ModelZipSurgery.Rewrite(path, dir.File("added.zip"), extra: zip => zip.CreateEntry("tokenizer/added.txt"));
        ModelZipSurgery.Rewrite(path, dir.File("dropped.zip"), (name, bytes) => name == "tokenizer/vocab.txt" ? null : bytes);

        LoadFails(dir.File("added.zip")).Message.Should().Contain("entry tokenizer/added.txt: is not listed in the manifest");
        LoadFails(dir.File("dropped.zip")).Message.Should().Contain("entry tokenizer/vocab.txt: is listed in the manifest but missing");
    }

    public static TheoryData<string, bool, bool> Bombs => new()
    {
        // entry, entry table in the manifest, lying header (declares the expected size, inflates to 1 GiB)
        { "pipeline/before.zip", true, false },
        { "pipeline/before.zip", true, true },
        { "pipeline/before.zip", false, false },
        { "pipeline/before.zip", false, true },
        { "tokenizer/vocab.txt", false, false },
        { "tokenizer/vocab.txt", false, true },
        { Adapter, false, true },
    };

    [Theory]
    [MemberData(nameof(Bombs))]
    public void A_zip_bomb_entry_fails_naming_it_without_inflating_it(string entry, bool entryTable, bool lyingHeader)
    {
        using var dir = new TempDir();
        var saved = SaveModel(dir);
        var original = ModelZipSurgery.Read(saved, entry);
        var bomb = dir.File("bomb.zip");
        ModelZipSurgery.Rewrite(saved, bomb,
            (name, bytes) => name == entry ? null : name == "lora-model.json" && !entryTable ? ModelZipSurgery.WithoutEntryTable(bytes) : bytes,
            zip => ModelZipSurgery.AddZeros(zip, entry, 1L << 30));
        new FileInfo(bomb).Length.Should().BeLessThan(8 << 20, "the bomb is small on disk");
        if (lyingHeader) ModelZipSurgery.SetDeclaredSize(bomb, entry, (uint)original.Length);

        long allocated = GC.GetAllocatedBytesForCurrentThread();
        var error = LoadFails(bomb);
        allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;

        error.Entry.Should().Be(entry);
        error.Message.Should().StartWith($"{bomb}, entry {entry}: ");
        allocated.Should().BeLessThan(300L << 20, "reading stops at the declared size (it inflates to 1 GiB); this thread allocated {0:N0} bytes", allocated);
    }

    public static TheoryData<string, string> OddNames => new()
    {
        { "adapter/..", "'..'" },
        { "adapter/sub/x.safetensors", "nested inside adapter/" },
        { "tokenizer/../../evil.txt", "'..'" },
        { "/etc/passwd", "absolute" },
        { "tokenizer\\vocab.txt", "backslash" },
    };

    [Theory]
    [MemberData(nameof(OddNames))]
    public void An_entry_with_an_odd_name_is_refused_by_load_and_export_alike(string entry, string reason)
    {
        using var dir = new TempDir();
        var path = SaveModel(dir);
        ModelZipSurgery.Rewrite(path, dir.File("odd.zip"), extra: zip => { using var s = zip.CreateEntry(entry).Open(); s.WriteByte(1); });

        var onLoad = LoadFails(dir.File("odd.zip"));
        var onExport = FluentActions.Invoking(() => LoraModelFile.ExportAdapter(dir.File("odd.zip"), dir.File("peft")))
            .Should().Throw<ModelFileException>().Which;

        onLoad.Entry.Should().Be(entry);
        onLoad.Message.Should().Contain(reason);
        onExport.Message.Should().Be(onLoad.Message);
        Directory.Exists(dir.File("peft")).Should().BeFalse("nothing is exported from a file that fails its checks");
    }

    [Fact]
    public void A_duplicated_entry_is_refused()
    {
        using var dir = new TempDir();
        var path = SaveModel(dir);
        ModelZipSurgery.Rewrite(path, dir.File("twice.zip"), extra: zip => { using var s = zip.CreateEntry(Adapter).Open(); s.WriteByte(1); });

        LoadFails(dir.File("twice.zip")).Message.Should().Contain($"entry {Adapter}: appears twice");
    }

    [Fact]
    public void A_garbage_or_missing_manifest_and_a_damaged_zip_are_refused_naming_the_file()
    {
        using var dir = new TempDir();
        var path = SaveModel(dir);
        ModelZipSurgery.Rewrite(path, dir.File("garbage.zip"), (name, bytes) => name == "lora-model.json" ? "{\"formatVersion\": 1, oops"u8.ToArray() : bytes);
        ModelZipSurgery.Rewrite(path, dir.File("none.zip"), (name, bytes) => name == "lora-model.json" ? null : bytes);
        var whole = File.ReadAllBytes(path);
        File.WriteAllBytes(dir.File("truncated.zip"), whole[..(whole.Length / 2)]);

        LoadFails(dir.File("garbage.zip")).Message.Should().StartWith($"{dir.File("garbage.zip")}, entry lora-model.json: is not a valid manifest");
        LoadFails(dir.File("none.zip")).Message.Should().StartWith($"{dir.File("none.zip")}, entry lora-model.json: is missing");
        var truncated = LoadFails(dir.File("truncated.zip"));
        truncated.Entry.Should().BeNull();
        truncated.Message.Should().StartWith($"{dir.File("truncated.zip")}: not a LoRA model file");
    }

    [Fact]
    public void A_damaged_export_source_writes_nothing()
    {
        using var dir = new TempDir();
        var path = SaveModel(dir);
        ModelZipSurgery.FlipStoredBytes(path, Adapter, 1000);

        var act = () => LoraModelFile.ExportAdapter(path, dir.File("peft"));

        act.Should().Throw<ModelFileException>().Which.Entry.Should().Be(Adapter);
        Directory.Exists(dir.File("peft")).Should().BeFalse();
    }

    static float[] Scores(MLContext ml, ITransformer model) =>
        ml.Data.CreateEnumerable<LoraModelFileTests.Scored>(model.Transform(TrainedSpamPipelineData.Probe(ml)), reuseRowObject: false)
            .SelectMany(s => s.Score).ToArray();
}

static class TrainedSpamPipelineData
{
    public static IDataView Probe(MLContext ml) => ml.Data.LoadFromEnumerable(TextData.Balanced(TextData.SmsSpam(3000, 200), 10));
}
