using System.Text;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Hub;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Hub;

/// <summary>Resolving a Hub id downloads the model once into the Hugging Face cache layout and reuses it afterwards.</summary>
public class ModelLocatorDownloadTests
{
    [Fact]
    public void First_resolve_downloads_a_folder_that_CheckpointFolder_opens_with_identical_files()
    {
        using var bed = new HubTestBed();
        var repo = bed.AddBert();

        var folder = ModelLocator.Resolve(HubTestBed.RepoId, bed.Options());

        folder.Should().Be(Path.Combine(bed.RepoCache(), "snapshots", repo.Resolve("main")!));
        var checkpoint = CheckpointFolder.Open(folder);
        Path.GetFileName(checkpoint.WeightsEntry).Should().Be("model.safetensors");
        HubTestBed.ShouldHoldExactly(folder, HubTestBed.BertFiles);
        bed.Server.Requests.Should().OnlyContain(r => r.Header("Authorization") == null, "no token was configured");
    }

    [Fact]
    public void Snapshot_entries_link_to_blobs_named_by_etag_and_the_ref_holds_the_commit()
    {
        using var bed = new HubTestBed();
        var commit = bed.AddBert().Resolve("main")!;

        var folder = ModelLocator.Resolve(HubTestBed.RepoId, bed.Options());

        File.ReadAllText(Path.Combine(bed.RepoCache(), "refs", "main")).Should().Be(commit);
        var weights = new FileInfo(Path.Combine(folder, "model.safetensors"));
        var config = new FileInfo(Path.Combine(folder, "config.json"));
        weights.LinkTarget.Should().Be(Path.Combine("..", "..", "blobs", FakeHub.Sha256(HubTestBed.BertFiles["model.safetensors"])), "LFS files are named by their SHA-256");
        config.LinkTarget.Should().Be(Path.Combine("..", "..", "blobs", FakeHub.GitBlobId(HubTestBed.BertFiles["config.json"])), "git files are named by their blob id");
        bed.CompleteBlobs().Should().HaveCount(HubTestBed.BertFiles.Count);
        bed.IncompleteBlobs().Should().BeEmpty();
    }

    [Fact]
    public void Second_resolve_of_a_branch_only_asks_which_commit_it_points_to()
    {
        using var bed = new HubTestBed();
        bed.AddBert();
        var first = ModelLocator.Resolve(HubTestBed.RepoId, bed.Options());
        bed.Server.ClearRequests();

        var second = ModelLocator.Resolve(HubTestBed.RepoId, bed.Options());

        second.Should().Be(first);
        bed.Server.FileRequests.Should().BeEmpty();
        bed.Server.Requests.Should().ContainSingle().Which.IsApi.Should().BeTrue();
    }

    [Fact]
    public void Resolving_a_cached_commit_sha_makes_no_request()
    {
        using var bed = new HubTestBed();
        var commit = bed.AddBert().Resolve("main")!;
        var first = ModelLocator.Resolve($"{HubTestBed.RepoId}@{commit}", bed.Options());
        bed.Server.Requests.Should().NotBeEmpty();
        bed.Server.ClearRequests();

        var second = ModelLocator.Resolve($"{HubTestBed.RepoId}@{commit}", bed.Options());

        second.Should().Be(first);
        bed.Server.Requests.Should().BeEmpty();
        Directory.Exists(Path.Combine(bed.RepoCache(), "refs")).Should().BeFalse("a commit sha is not a ref");
    }

    [Fact]
    public void A_revision_after_the_at_sign_is_downloaded_and_recorded_under_refs()
    {
        using var bed = new HubTestBed();
        var repo = bed.AddBert();
        var v1Config = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(HubTestBed.BertFiles["config.json"]).Replace("{", "{\"_v\": 1,", StringComparison.Ordinal));
        var v1 = bed.Server.Push(repo, HubTestBed.BertFilesWith(new Dictionary<string, byte[]> { ["config.json"] = v1Config }), branch: "v1");

        var folder = ModelLocator.Resolve($"{HubTestBed.RepoId}@v1", bed.Options());

        folder.Should().EndWith(v1);
        File.ReadAllBytes(Path.Combine(folder, "config.json")).Should().Equal(v1Config);
        File.ReadAllText(Path.Combine(bed.RepoCache(), "refs", "v1")).Should().Be(v1);
        bed.Server.Requests.Where(r => r.IsApi).Should().OnlyContain(r => r.Path!.EndsWith("/revision/v1"));
        bed.Server.FileRequests.Should().OnlyContain(r => r.ToCdn || r.Path!.Contains($"/resolve/{v1}/"),
            "files are fetched at the commit the revision resolved to");
    }

    [Fact]
    public void Blobs_already_in_the_cache_are_linked_into_a_new_commit_without_downloading_them()
    {
        using var bed = new HubTestBed();
        var repo = bed.AddBert();
        ModelLocator.Resolve(HubTestBed.RepoId, bed.Options());
        var newConfig = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(HubTestBed.BertFiles["config.json"]).Replace("{", "{\"_new\": true,", StringComparison.Ordinal));
        var next = bed.Server.Push(repo, HubTestBed.BertFilesWith(new Dictionary<string, byte[]> { ["config.json"] = newConfig }));
        bed.Server.ClearRequests();

        var folder = ModelLocator.Resolve(HubTestBed.RepoId, bed.Options());

        folder.Should().EndWith(next);
        bed.Server.FileRequests.Select(r => r.File).Should().Equal("config.json");
        HubTestBed.ShouldHoldExactly(folder, HubTestBed.BertFilesWith(new Dictionary<string, byte[]> { ["config.json"] = newConfig }));
        File.ReadAllText(Path.Combine(bed.RepoCache(), "refs", "main")).Should().Be(next);
    }

    [Fact]
    public void Only_the_files_a_classifier_needs_are_fetched()
    {
        using var bed = new HubTestBed();
        var extra = new Dictionary<string, byte[]>
        {
            ["README.md"] = Encoding.UTF8.GetBytes("# card"),
            ["pytorch_model.bin"] = new byte[] { 1, 2, 3 },
            ["tf_model.h5"] = new byte[] { 4, 5 },
            ["onnx/model.onnx"] = new byte[] { 6 },
            ["merges.txt"] = Encoding.UTF8.GetBytes("#version: 0.2\n"),
        };
        bed.Server.AddRepo(HubTestBed.RepoId, HubTestBed.BertFilesWith(extra));

        var folder = ModelLocator.Resolve(HubTestBed.RepoId, bed.Options());

        bed.Server.FileRequests.Select(r => r.File).Distinct().Should().BeEquivalentTo(HubTestBed.BertFiles.Keys.Append("merges.txt"));
        Directory.GetFileSystemEntries(folder).Select(Path.GetFileName).Should().BeEquivalentTo(HubTestBed.BertFiles.Keys.Append("merges.txt"));
    }

    [Fact]
    public void Pytorch_weights_are_fetched_only_when_the_repository_has_no_safetensors()
    {
        using var bed = new HubTestBed();
        var bin = Enumerable.Range(0, 5000).Select(i => (byte)i).ToArray();
        bed.Server.AddRepo(HubTestBed.RepoId, HubTestBed.BertFilesWith(new Dictionary<string, byte[]> { ["pytorch_model.bin"] = bin }, "model.safetensors"));

        var folder = ModelLocator.Resolve(HubTestBed.RepoId, bed.Options());

        Path.GetFileName(CheckpointFolder.Open(folder).WeightsEntry).Should().Be("pytorch_model.bin");
        File.ReadAllBytes(Path.Combine(folder, "pytorch_model.bin")).Should().Equal(bin);
    }

    [Fact]
    public void Sharded_safetensors_fetch_the_index_and_every_shard()
    {
        using var bed = new HubTestBed();
        var shards = HubTestBed.Shard(HubTestBed.BertFiles["model.safetensors"]);
        var files = HubTestBed.BertFilesWith(shards, "model.safetensors");
        bed.Server.AddRepo(HubTestBed.RepoId, files);

        var folder = ModelLocator.Resolve(HubTestBed.RepoId, bed.Options());

        bed.Server.FileRequests.Where(r => r.ServesContent).Select(r => r.File).Should()
            .Contain(new[] { "model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors" });
        HubTestBed.ShouldHoldExactly(folder, files);
        var checkpoint = CheckpointFolder.Open(folder);
        Path.GetFileName(checkpoint.WeightsEntry).Should().Be("model.safetensors.index.json");
        using var weights = checkpoint.OpenWeights();
        weights.Files.Should().HaveCount(2);
        weights.Names.Should().BeEquivalentTo(SafeTensorsFile.Open(Path.Combine(SharedData.Fixture("bert"), "model.safetensors")).Entries.Select(e => e.Name));
    }

    [Fact]
    public void Without_file_metadata_in_the_listing_the_etag_comes_from_a_head_request()
    {
        using var bed = new HubTestBed();
        bed.Server.ListFileMetadata = false;
        bed.AddBert();

        var folder = ModelLocator.Resolve(HubTestBed.RepoId, bed.Options());

        HubTestBed.ShouldHoldExactly(folder, HubTestBed.BertFiles);
        bed.Server.Requests.Where(r => r.Method == "HEAD").Select(r => r.File).Should().BeEquivalentTo(HubTestBed.BertFiles.Keys);
        new FileInfo(Path.Combine(folder, "model.safetensors")).LinkTarget.Should().EndWith(FakeHub.Sha256(HubTestBed.BertFiles["model.safetensors"]));
    }

    [Fact]
    public void Progress_is_reported_up_to_each_file_size()
    {
        using var bed = new HubTestBed();
        bed.AddBert();

        ModelLocator.Resolve(HubTestBed.RepoId, bed.Options());

        foreach (var (name, bytes) in HubTestBed.BertFiles)
        {
            var reports = bed.Progress.Reports.Where(p => p.File == name).ToList();
            reports.Should().NotBeEmpty();
            reports.Select(p => p.BytesDone).Should().BeInAscendingOrder();
            reports[^1].Should().Be(new HubDownloadProgress(name, bytes.Length, bytes.Length));
        }
    }

    [Fact]
    public async Task Concurrent_resolves_share_one_download_of_each_file()
    {
        using var bed = new HubTestBed();
        bed.AddBert();

        var folders = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => ModelLocator.ResolveAsync(HubTestBed.RepoId, bed.Options()))));

        folders.Distinct().Should().ContainSingle();
        HubTestBed.ShouldHoldExactly(folders[0], HubTestBed.BertFiles);
        bed.Server.Requests.Where(r => r.ServesContent).GroupBy(r => r.File).Should().OnlyContain(g => g.Count() == 1, "a file another caller is downloading is waited for, not fetched again");
        bed.IncompleteBlobs().Should().BeEmpty();
    }

    [Fact]
    public void The_endpoint_option_is_used_for_every_request()
    {
        using var bed = new HubTestBed(pathPrefix: "/mirror");
        bed.AddBert();

        var folder = ModelLocator.Resolve(HubTestBed.RepoId, bed.Options());

        HubTestBed.ShouldHoldExactly(folder, HubTestBed.BertFiles);
        bed.Server.Requests.Where(r => !r.ToCdn).Should().OnlyContain(r => r.Target.StartsWith("/mirror/"));
        bed.Server.Requests.Should().Contain(r => r.Target.StartsWith("/mirror/api/models/" + HubTestBed.RepoId + "/revision/main"));
    }

    [Fact]
    public void A_token_is_sent_as_a_bearer_header_to_the_hub_but_not_to_the_cdn()
    {
        using var bed = new HubTestBed();
        bed.AddBert(requiredToken: "hf_secret");
        var options = bed.Options();
        options.Token = "hf_secret";

        var folder = ModelLocator.Resolve(HubTestBed.RepoId, options);

        HubTestBed.ShouldHoldExactly(folder, HubTestBed.BertFiles);
        bed.Server.Requests.Where(r => !r.ToCdn).Should().OnlyContain(r => r.Header("Authorization") == "Bearer hf_secret");
        bed.Server.Requests.Where(r => r.ToCdn).Should().NotBeEmpty().And.OnlyContain(r => r.Header("Authorization") == null,
            "the token must not leak to the host the Hub redirects to");
    }
}
