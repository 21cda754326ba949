using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Hub;

namespace Microsoft.ML.LoRA.Tests.Hub;

/// <summary>Offline mode uses only the cache and never the network.</summary>
public class ModelLocatorOfflineTests
{
    [Fact]
    public void Offline_mode_uses_the_cached_model_with_zero_requests()
    {
        using var bed = new HubTestBed();
        bed.AddBert();
        var online = ModelLocator.Resolve(HubTestBed.RepoId, bed.Options());
        bed.Server.ClearRequests();
        var options = bed.Options();
        options.Offline = true;

        var offline = ModelLocator.Resolve(HubTestBed.RepoId, options);

        offline.Should().Be(online);
        CheckpointFolder.Open(offline).WeightsEntry.Should().NotBeNull();
        bed.Server.Requests.Should().BeEmpty();
    }

    [Fact]
    public void Offline_mode_without_a_cached_model_fails_with_not_cached_and_zero_requests()
    {
        using var bed = new HubTestBed();
        bed.AddBert();
        var options = bed.Options();
        options.Offline = true;

        var failure = () => ModelLocator.Resolve(HubTestBed.RepoId, options);

        var message = failure.Should().Throw<HubException>().Which.Message;
        message.Should().Contain($"Model '{HubTestBed.RepoId}' is not cached").And.Contain("HF_HUB_OFFLINE")
            .And.Contain($"huggingface-cli download {HubTestBed.RepoId}").And.Contain(bed.RepoCache());
        bed.Server.Requests.Should().BeEmpty();
    }

    [Fact]
    public void Offline_mode_names_what_an_incomplete_snapshot_lacks()
    {
        using var bed = new HubTestBed();
        var commit = bed.AddBert().Resolve("main")!;
        var folder = ModelLocator.Resolve(HubTestBed.RepoId, bed.Options());
        File.Delete(Path.Combine(folder, "model.safetensors"));
        bed.Server.ClearRequests();
        var options = bed.Options();
        options.Offline = true;

        var failure = () => ModelLocator.Resolve($"{HubTestBed.RepoId}@{commit}", options);

        failure.Should().Throw<HubException>().Which.Message.Should().Contain("not cached completely").And.Contain("lacks weights");
        bed.Server.Requests.Should().BeEmpty();
    }

    [Fact]
    public void HF_HUB_OFFLINE_in_the_environment_turns_offline_mode_on()
    {
        using var bed = new HubTestBed();
        bed.AddBert();
        var options = bed.Options();
        options.Offline = null;
        options.GetEnvironmentVariable = name => name == "HF_HUB_OFFLINE" ? "1" : null;

        var failure = () => ModelLocator.Resolve(HubTestBed.RepoId, options);

        failure.Should().Throw<HubException>().Which.Message.Should().Contain("not cached");
        bed.Server.Requests.Should().BeEmpty();
    }

    [Fact]
    public void A_cache_written_with_the_hugging_face_layout_is_reused_offline()
    {
        // What huggingface_hub leaves behind: blobs, a snapshot of relative links, and refs/main.
        using var bed = new HubTestBed();
        var commit = new string('a', 40);
        var repo = bed.RepoCache();
        Directory.CreateDirectory(Path.Combine(repo, "blobs"));
        Directory.CreateDirectory(Path.Combine(repo, "snapshots", commit));
        Directory.CreateDirectory(Path.Combine(repo, "refs"));
        foreach (var (name, bytes) in HubTestBed.BertFiles)
        {
            var etag = FakeHub.GitBlobId(bytes);
            File.WriteAllBytes(Path.Combine(repo, "blobs", etag), bytes);
            File.CreateSymbolicLink(Path.Combine(repo, "snapshots", commit, name), $"../../blobs/{etag}");
        }
        File.WriteAllText(Path.Combine(repo, "refs", "main"), commit);
        var options = bed.Options();
        options.Offline = true;

        var folder = ModelLocator.Resolve(HubTestBed.RepoId, options);

        folder.Should().Be(Path.Combine(repo, "snapshots", commit));
        HubTestBed.ShouldHoldExactly(folder, HubTestBed.BertFiles);
    }
}
