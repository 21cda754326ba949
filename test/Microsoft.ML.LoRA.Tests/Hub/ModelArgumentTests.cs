using Microsoft.ML.LoRA.Hub;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Hub;

/// <summary>What counts as a local folder, a Hub id, or neither.</summary>
public class ModelArgumentTests
{
    [Fact]
    public void A_local_folder_is_returned_as_given_without_any_request()
    {
        using var bed = new HubTestBed();
        bed.AddBert();
        using var local = new TempDir();

        ModelLocator.Resolve(local.Path, bed.Options()).Should().Be(local.Path);
        ModelLocator.Resolve(SharedData.Fixture("bert"), bed.Options()).Should().Be(SharedData.Fixture("bert"));

        bed.Server.Requests.Should().BeEmpty();
    }

    [Fact]
    public void A_local_folder_named_like_a_hub_id_wins_over_the_hub()
    {
        using var bed = new HubTestBed();
        bed.AddBert();
        using var work = new TempDir();
        var relative = Path.GetRelativePath(Environment.CurrentDirectory, Path.Combine(work.Path, "org", "name"));
        Directory.CreateDirectory(Path.Combine(work.Path, "org", "name"));

        ModelLocator.Resolve(relative, bed.Options()).Should().Be(relative);

        bed.Server.Requests.Should().BeEmpty();
    }

    [Theory]
    [InlineData("/no/such/folder/anywhere")]
    [InlineData("a/b/c")]
    [InlineData("org/-name")]
    [InlineData("org/na--me")]
    [InlineData("org/name@")]
    [InlineData("org/name@ma in")]
    [InlineData("org/name@../../etc")]
    [InlineData("org/name.git")]
    [InlineData("bad name")]
    public void A_malformed_id_that_is_no_folder_gives_a_clear_error_without_any_request(string argument)
    {
        using var bed = new HubTestBed();

        var failure = () => ModelLocator.Resolve(argument, bed.Options());

        failure.Should().Throw<ArgumentException>().Which.Message.Should().Contain("There is no folder").And.Contain("is not a Hugging Face Hub id")
            .And.Contain(argument);
        bed.Server.Requests.Should().BeEmpty();
    }

    [Fact]
    public void A_file_instead_of_a_folder_is_rejected()
    {
        using var bed = new HubTestBed();

        var failure = () => ModelLocator.Resolve(Path.Combine(SharedData.Fixture("bert"), "config.json"), bed.Options());

        failure.Should().Throw<ArgumentException>().Which.Message.Should().Contain("is a file");
    }

    [Theory]
    [InlineData("bert-base-uncased", "bert-base-uncased", "main", "models--bert-base-uncased")]
    [InlineData("google/bert_uncased_L-2_H-128_A-2", "google/bert_uncased_L-2_H-128_A-2", "main", "models--google--bert_uncased_L-2_H-128_A-2")]
    [InlineData("org/name@v1.0", "org/name", "v1.0", "models--org--name")]
    [InlineData("org/name@refs/pr/1", "org/name", "refs/pr/1", "models--org--name")]
    public void Hub_ids_parse_into_repository_revision_and_cache_folder(string text, string repo, string revision, string folder)
    {
        var id = HubModelId.Parse(text);

        id.RepoId.Should().Be(repo);
        id.Revision.Should().Be(revision);
        id.CacheFolderName.Should().Be(folder);
        id.RevisionIsCommit.Should().BeFalse();
    }

    [Fact]
    public void A_forty_digit_hex_revision_is_a_commit()
    {
        HubModelId.Parse("org/name@" + new string('0', 39) + "f").RevisionIsCommit.Should().BeTrue();
        HubModelId.Parse("org/name@" + new string('0', 39) + "F").RevisionIsCommit.Should().BeFalse("commit shas are lower-case");
    }
}
