using Microsoft.ML.LoRA.Hub;

namespace Microsoft.ML.LoRA.Tests.Hub;

/// <summary>Options fall back to the environment variables huggingface_hub reads, then to its defaults.</summary>
public class HubOptionsTests
{
    static HubOptions With(Dictionary<string, string> environment) => new()
    {
        GetEnvironmentVariable = name => environment.TryGetValue(name, out var v) ? v : null,
        GetHomeDirectory = () => "/home/user",
    };

    [Fact]
    public void HF_ENDPOINT_overrides_the_default_and_the_option_overrides_HF_ENDPOINT()
    {
        With(new()).ResolveEndpoint().Should().Be("https://huggingface.co");
        var fromEnvironment = With(new() { ["HF_ENDPOINT"] = "https://hf-mirror.example/" });
        fromEnvironment.ResolveEndpoint().Should().Be("https://hf-mirror.example");
        fromEnvironment.Endpoint = "http://127.0.0.1:8080/hub";
        fromEnvironment.ResolveEndpoint().Should().Be("http://127.0.0.1:8080/hub");
    }

    [Fact]
    public void HF_ENDPOINT_from_the_environment_is_where_requests_go()
    {
        using var bed = new HubTestBed(pathPrefix: "/env-mirror");
        bed.AddBert();
        var options = bed.Options();
        options.Endpoint = null;
        options.GetEnvironmentVariable = name => name == "HF_ENDPOINT" ? bed.Server.Endpoint : null;

        var folder = ModelLocator.Resolve(HubTestBed.RepoId, options);

        HubTestBed.ShouldHoldExactly(folder, HubTestBed.BertFiles);
        bed.Server.Requests.Where(r => !r.ToCdn).Should().NotBeEmpty().And.OnlyContain(r => r.Target.StartsWith("/env-mirror/"));
    }

    [Fact]
    public void An_endpoint_that_is_not_an_http_url_is_rejected()
    {
        var options = With(new() { ["HF_ENDPOINT"] = "ftp://example" });

        options.Invoking(o => o.ResolveEndpoint()).Should().Throw<ArgumentException>().Which.Message.Should().Contain("ftp://example").And.Contain("HF_ENDPOINT");
    }

    [Fact]
    public void The_cache_folder_follows_HF_HUB_CACHE_then_HF_HOME_then_XDG_CACHE_HOME_then_the_home_folder()
    {
        var root = Path.GetTempPath();
        With(new()).ResolveCacheDirectory().Should().Be(Path.GetFullPath("/home/user/.cache/huggingface/hub"));
        With(new() { ["XDG_CACHE_HOME"] = Path.Combine(root, "xdg") }).ResolveCacheDirectory().Should().Be(Path.Combine(root, "xdg", "huggingface", "hub"));
        With(new() { ["XDG_CACHE_HOME"] = Path.Combine(root, "xdg"), ["HF_HOME"] = Path.Combine(root, "hf") }).ResolveCacheDirectory()
            .Should().Be(Path.Combine(root, "hf", "hub"));
        var all = With(new() { ["HF_HOME"] = Path.Combine(root, "hf"), ["HF_HUB_CACHE"] = Path.Combine(root, "hubcache") });
        all.ResolveCacheDirectory().Should().Be(Path.Combine(root, "hubcache"));
        all.CacheDirectory = Path.Combine(root, "mine");
        all.ResolveCacheDirectory().Should().Be(Path.Combine(root, "mine"));
    }

    [Theory]
    [InlineData(null, false)]
    [InlineData("0", false)]
    [InlineData("1", true)]
    [InlineData("TRUE", true)]
    [InlineData("yes", true)]
    [InlineData("On", true)]
    public void HF_HUB_OFFLINE_turns_offline_mode_on_unless_the_option_says_otherwise(string? value, bool offline)
    {
        var options = With(value is null ? new() : new() { ["HF_HUB_OFFLINE"] = value });
        options.ResolveOffline().Should().Be(offline);
        options.Offline = false;
        options.ResolveOffline().Should().BeFalse();
    }

    [Fact]
    public void HF_TOKEN_is_used_unless_the_option_sets_a_token_or_an_empty_one()
    {
        var options = With(new() { ["HF_TOKEN"] = "hf_env" });
        options.ResolveToken().Should().Be("hf_env");
        options.Token = "hf_option";
        options.ResolveToken().Should().Be("hf_option");
        options.Token = "";
        options.ResolveToken().Should().BeNull();
    }
}
