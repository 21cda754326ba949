using System.Diagnostics;
using Microsoft.ML.LoRA.Hub;

namespace Microsoft.ML.LoRA.Tests.Hub;

/// <summary>Downloads survive lost connections, reject damaged bytes, stop after bounded retries and explain failures.</summary>
public class HubDownloadFaultTests
{
    const string Weights = "model.safetensors";

    static byte[] WeightBytes => HubTestBed.BertFiles[Weights];

    [Fact]
    public void Interrupted_download_resumes_with_a_range_request()
    {
        using var bed = new HubTestBed();
        bed.AddBert();
        bed.Server.InjectContentFault(Weights, new Fault.DropAfter(40_000));

        var folder = ModelLocator.Resolve(HubTestBed.RepoId, bed.Options());

        File.ReadAllBytes(Path.Combine(folder, Weights)).Should().Equal(WeightBytes);
        var fetches = bed.Server.Requests.Where(r => r.ServesContent && r.File == Weights).ToList();
        fetches.Should().HaveCount(2);
        fetches[0].Header("Range").Should().BeNull();
        fetches[1].Header("Range").Should().Be("bytes=40000-");
        bed.IncompleteBlobs().Should().BeEmpty();
    }

    [Fact]
    public void A_partial_download_left_by_an_earlier_run_is_resumed()
    {
        using var bed = new HubTestBed();
        bed.AddBert();
        bed.Server.InjectContentFault(Weights, new Fault.DropAfter(30_000));

        var failure = () => ModelLocator.Resolve(HubTestBed.RepoId, bed.Options(maxRetries: 0));

        failure.Should().Throw<HubException>().Which.Message.Should().Contain(Weights).And.Contain("connection was lost").And.Contain("1 attempt");
        var partial = bed.IncompleteBlobs().Should().ContainSingle().Subject;
        new FileInfo(partial).Length.Should().Be(30_000);
        bed.Server.ClearRequests();

        var folder = ModelLocator.Resolve(HubTestBed.RepoId, bed.Options());

        File.ReadAllBytes(Path.Combine(folder, Weights)).Should().Equal(WeightBytes);
        bed.Server.Requests.Where(r => r.ServesContent).Should().ContainSingle().Which.Header("Range").Should().Be("bytes=30000-");
        File.Exists(partial).Should().BeFalse();
    }

    [Fact]
    public void A_server_that_ignores_the_range_makes_the_download_restart_from_zero()
    {
        using var bed = new HubTestBed();
        bed.AddBert();
        bed.Server.InjectContentFault(Weights, new Fault.DropAfter(50_000));
        bed.Server.InjectFault(r => r.ServesContent && r.File == Weights && r.Header("Range") != null, new Fault.IgnoreRange());

        var folder = ModelLocator.Resolve(HubTestBed.RepoId, bed.Options());

        File.ReadAllBytes(Path.Combine(folder, Weights)).Should().Equal(WeightBytes, "a 200 answer is the whole file, not a continuation");
    }

    [Fact]
    public void A_corrupted_payload_is_rejected_by_the_sha256_check_and_leaves_no_blob()
    {
        using var bed = new HubTestBed();
        bed.AddBert();
        bed.Server.InjectContentFault(Weights, new Fault.Corrupt());

        var failure = () => ModelLocator.Resolve(HubTestBed.RepoId, bed.Options());

        var error = failure.Should().Throw<HubException>().Which;
        error.Message.Should().Contain(Weights).And.Contain("corrupt").And.Contain("SHA-256").And.Contain(FakeHub.Sha256(WeightBytes));
        error.Url!.ToString().Should().Contain($"/resolve/").And.EndWith(Weights);
        bed.CompleteBlobs().Should().NotContain(FakeHub.Sha256(WeightBytes));
        bed.IncompleteBlobs().Should().BeEmpty();
        Directory.GetDirectories(Path.Combine(bed.RepoCache(), "snapshots")).Should().ContainSingle()
            .Which.Should().Match(s => !File.Exists(Path.Combine(s, Weights)));
        File.Exists(Path.Combine(bed.RepoCache(), "refs", "main")).Should().BeFalse("a failed download must not be recorded as the revision's snapshot");
    }

    [Fact]
    public void A_corrupted_git_file_is_rejected_by_its_blob_id()
    {
        using var bed = new HubTestBed();
        bed.AddBert();
        bed.Server.InjectContentFault("vocab.txt", new Fault.Corrupt());

        var failure = () => ModelLocator.Resolve(HubTestBed.RepoId, bed.Options());

        failure.Should().Throw<HubException>().Which.Message.Should().Contain("vocab.txt").And.Contain("corrupt").And.Contain("git blob SHA-1");
        bed.CompleteBlobs().Should().NotContain(FakeHub.GitBlobId(HubTestBed.BertFiles["vocab.txt"]));
    }

    [Fact]
    public void A_body_shorter_than_the_listed_size_is_rejected()
    {
        using var bed = new HubTestBed();
        bed.AddBert();
        bed.Server.InjectContentFault(Weights, new Fault.Truncate(1000));

        var failure = () => ModelLocator.Resolve(HubTestBed.RepoId, bed.Options());

        failure.Should().Throw<HubException>().Which.Message.Should().Contain(Weights).And.Contain("1000 bytes").And.Contain(WeightBytes.Length.ToString());
        bed.IncompleteBlobs().Should().BeEmpty();
    }

    [Fact]
    public void Unknown_id_gives_a_not_found_message_naming_the_repository()
    {
        using var bed = new HubTestBed();
        bed.AddBert();

        var failure = () => ModelLocator.Resolve("nobody/no-such-model", bed.Options());

        var error = failure.Should().Throw<HubException>().Which;
        error.StatusCode.Should().Be(404);
        error.Message.Should().Contain("'nobody/no-such-model' was not found").And.Contain("check the id").And.Contain(bed.Server.Endpoint);
        bed.Server.Requests.Should().ContainSingle("a 404 is not retried");
    }

    [Fact]
    public void Unknown_revision_gives_a_message_naming_the_revision()
    {
        using var bed = new HubTestBed();
        bed.AddBert();

        var failure = () => ModelLocator.Resolve($"{HubTestBed.RepoId}@no-such-branch", bed.Options());

        failure.Should().Throw<HubException>().Which.Message.Should().Contain("Revision 'no-such-branch'").And.Contain(HubTestBed.RepoId);
    }

    [Fact]
    public void A_listed_file_that_is_missing_gives_a_message_naming_the_file()
    {
        using var bed = new HubTestBed();
        bed.AddBert();
        bed.Server.InjectFault(r => r.File == "tokenizer.json", new Fault.Status(404));

        var failure = () => ModelLocator.Resolve(HubTestBed.RepoId, bed.Options());

        var error = failure.Should().Throw<HubException>().Which;
        error.Message.Should().Contain("File tokenizer.json was not found").And.Contain("/resolve/");
        error.Url!.AbsolutePath.Should().EndWith("/tokenizer.json");
    }

    [Fact]
    public void A_gated_repository_without_a_token_says_to_set_HF_TOKEN()
    {
        using var bed = new HubTestBed();
        bed.AddBert(requiredToken: "hf_secret");

        var failure = () => ModelLocator.Resolve(HubTestBed.RepoId, bed.Options());

        var error = failure.Should().Throw<HubException>().Which;
        error.StatusCode.Should().Be(401);
        error.Message.Should().Contain("private or gated").And.Contain("HF_TOKEN").And.Contain(HubTestBed.RepoId);
        bed.Server.Requests.Should().ContainSingle("a 401 is not retried");
    }

    [Fact]
    public void A_wrong_token_is_reported_as_not_accepted()
    {
        using var bed = new HubTestBed();
        bed.AddBert(requiredToken: "hf_secret");
        var options = bed.Options();
        options.Token = "hf_wrong";

        var failure = () => ModelLocator.Resolve(HubTestBed.RepoId, options);

        failure.Should().Throw<HubException>().Which.Message.Should().Contain("token sent").And.Contain("not accepted");
    }

    [Fact]
    public void Service_unavailable_then_ok_is_retried_and_succeeds()
    {
        using var bed = new HubTestBed();
        bed.AddBert();
        bed.Server.InjectFault(r => r.IsApi, new Fault.Status(503));
        bed.Server.InjectContentFault(Weights, new Fault.Status(503));

        var folder = ModelLocator.Resolve(HubTestBed.RepoId, bed.Options());

        HubTestBed.ShouldHoldExactly(folder, HubTestBed.BertFiles);
        bed.Server.Requests.Count(r => r.IsApi).Should().Be(2);
        bed.Server.Requests.Count(r => r.ServesContent && r.File == Weights).Should().Be(2);
    }

    [Fact]
    public void Retries_are_bounded()
    {
        using var bed = new HubTestBed();
        bed.AddBert();
        bed.Server.InjectFault(r => r.IsApi, new Fault.Status(503), times: 100);

        var failure = () => ModelLocator.Resolve(HubTestBed.RepoId, bed.Options(maxRetries: 3));

        var error = failure.Should().Throw<HubException>().Which;
        error.Message.Should().Contain("failed after 4 attempts").And.Contain("503").And.Contain("/api/models/" + HubTestBed.RepoId);
        error.IsUnavailable.Should().BeTrue();
        bed.Server.Requests.Should().HaveCount(4);
    }

    [Fact]
    public void A_stalled_download_times_out_instead_of_hanging()
    {
        using var bed = new HubTestBed();
        bed.AddBert();
        bed.Server.InjectContentFault(Weights, new Fault.StallAfter(10_000), times: 10);
        var options = bed.Options(maxRetries: 1);
        options.ReadTimeout = TimeSpan.FromMilliseconds(300);
        var clock = Stopwatch.StartNew();

        var failure = () => ModelLocator.Resolve(HubTestBed.RepoId, options);

        failure.Should().Throw<HubException>().Which.Message.Should().Contain("no data arrived").And.Contain("2 attempts");
        clock.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(5));
        bed.Server.Requests.Where(r => r.ServesContent && r.File == Weights).Skip(1).Should().OnlyContain(r => r.Header("Range") == "bytes=10000-");
    }

    [Fact]
    public void An_unreachable_hub_is_reported_with_its_url()
    {
        using var bed = new HubTestBed();
        var options = bed.Options(maxRetries: 1);
        var port = bed.Server.Port;
        bed.Server.Dispose();   // nothing listens on the port any more

        var failure = () => ModelLocator.Resolve(HubTestBed.RepoId, options);

        var error = failure.Should().Throw<HubException>().Which;
        error.Message.Should().Contain("cannot reach").And.Contain($"127.0.0.1:{port}").And.Contain("2 attempts");
        error.IsUnavailable.Should().BeTrue();
    }

    [Fact]
    public void A_fully_cached_revision_is_used_when_the_hub_is_unavailable()
    {
        using var bed = new HubTestBed();
        bed.AddBert();
        var first = ModelLocator.Resolve(HubTestBed.RepoId, bed.Options());
        bed.Server.InjectFault(r => r.IsApi, new Fault.Status(503), times: 100);

        var second = ModelLocator.Resolve(HubTestBed.RepoId, bed.Options(maxRetries: 1));

        second.Should().Be(first);
    }

    [Fact]
    public async Task Cancellation_stops_the_download_and_keeps_the_partial_file_for_later()
    {
        using var bed = new HubTestBed();
        bed.AddBert();
        using var cts = new CancellationTokenSource();
        bed.Progress.OnReport = p => { if (p.File == Weights && p.BytesDone > 0) cts.Cancel(); };
        bed.Server.InjectContentFault(Weights, new Fault.StallAfter(20_000));

        var cancelled = () => ModelLocator.ResolveAsync(HubTestBed.RepoId, bed.Options(), cts.Token);

        await cancelled.Should().ThrowAsync<OperationCanceledException>();
        bed.IncompleteBlobs().Should().ContainSingle();
        bed.Progress.OnReport = null;
        var folder = await ModelLocator.ResolveAsync(HubTestBed.RepoId, bed.Options());
        File.ReadAllBytes(Path.Combine(folder, Weights)).Should().Equal(WeightBytes);
    }
}
