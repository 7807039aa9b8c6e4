package version

// gitlab is the "gitlab" preset: GitLab's required upgrade stops.
//
// Source: "Plan your upgrade path" (formerly "Upgrade paths"), GitLab
// documentation, https://docs.gitlab.com/update/upgrade_paths/ (the file
// doc/update/upgrade_paths.md of gitlab-org/gitlab), section "Required
// upgrade stops", in the version published during the GitLab 18 release
// cycle: GitLab 15, 16 and 17 stops in tables with patch levels (17.11.7
// the newest), and "Required GitLab 18 upgrade stops occur at versions
// 18.2, 18.5, 18.8, and 18.11" with no patch levels. Earlier versions of
// the page named lower patches (16.3.8, 16.7.z, 16.11.z in the GitLab 17.6
// docs); patch levels are raised as GitLab backports upgrade fixes, so
// compare with the current page when GitLab 19 is out.
//
// The page says to upgrade to the latest patch release of a stop's minor.
// Where it gives a patch level the table holds that level as written
// (the latest patch when the page was written; a lab can name a later
// one, see [Preset.StopsFor]). Where it gives only the minor (the GitLab
// 18 stops) the stop is MinorOnly and must be pinned by the lab file.
//
// Conditional stops (the page's "Required only for ...") are listed with
// their condition; [Preset.StopsFor] includes them unless
// [Preset.Unconditional] is used.
//
// From: the page covers GitLab 15 and later and sends earlier upgrades to
// the archived docs (https://archives.docs.gitlab.com). The last GitLab 14
// stop is 14.10.5: the GitLab 16-era version of the page gave the GitLab 14
// path as "14.0.12 > 14.3.6 > 14.9.5 > 14.10.5", and "Avoiding required
// stops" (https://docs.gitlab.com/development/avoiding_required_stops/)
// shows the same stops before 15.0.5 in its example. So the list is
// complete from 14.10.5 on. Before: GitLab 19 stops were not yet
// documented, so targets must be older than 19.0.0.
//
// Form: a tagged GitLab release has the package version and Docker image
// tag "<version>-ce.0" or "<version>-ee.0" (gitlab/gitlab-ce:16.7.10-ce.0):
// the build iteration is the edition and OMNIBUS_RELEASE, which "is
// deprecated and always set to 0" ("Version format for the packages and
// Docker images", https://docs.gitlab.com/omnibus/development/package_version_format/).
// A stop on the way to a target of edition ce is therefore written
// "<release>-ce.0", to an ee target "<release>-ee.0", and to a target
// without an edition (a bare "17.0.0", or a pre-release) as the bare
// release.
var gitlab = Preset{
	Name: "gitlab",
	Source: `"Plan your upgrade path", GitLab documentation, https://docs.gitlab.com/update/upgrade_paths/ ` +
		`(doc/update/upgrade_paths.md), as published during the GitLab 18 release cycle`,
	Releases: "https://packages.gitlab.com/gitlab (gitlab-ce, gitlab-ee), or the tags of gitlab/gitlab-ce and gitlab/gitlab-ee on Docker Hub",
	From:     MustParse("14.10.5"),
	Before:   MustParse("19.0.0"),
	Suffix: func(target Version) string {
		if e := target.Edition(); e != "" {
			return "-" + e + ".0"
		}
		return ""
	},
	// Required upgrade stops from "Plan your upgrade path",
	// https://docs.gitlab.com/update/upgrade_paths/ (GitLab 18 cycle).
	// Conditions are the page's "Required only for ..." notes.
	Stops: []Stop{
		// Required GitLab 15 upgrade stops.
		{Release: MustParse("15.0.5")},
		{Release: MustParse("15.1.6"), Condition: "GitLab instances with multiple web nodes"},
		{Release: MustParse("15.4.6")},
		{Release: MustParse("15.11.13")},
		// Required GitLab 16 upgrade stops.
		{Release: MustParse("16.0.10"), Condition: "GitLab instances with lots of users or large pipeline variables history"},
		{Release: MustParse("16.1.8"), Condition: "GitLab instances with NPM packages in their package registry"},
		{Release: MustParse("16.2.11"), Condition: "GitLab instances with large pipeline variables history"},
		{Release: MustParse("16.3.9")},
		{Release: MustParse("16.7.10")},
		{Release: MustParse("16.11.10")},
		// Required GitLab 17 upgrade stops; 17.3.7 and later are "the
		// latest GitLab 17.x patch release" at the time of the page.
		{Release: MustParse("17.1.8"), Condition: "instances with large ci_pipeline_messages tables"},
		{Release: MustParse("17.3.7")},
		{Release: MustParse("17.5.5")},
		{Release: MustParse("17.8.7")},
		{Release: MustParse("17.11.7")},
		// Required GitLab 18 upgrade stops: minors only on the page
		// ("find the patch releases in the GitLab package repository").
		{Release: MustParse("18.2"), MinorOnly: true},
		{Release: MustParse("18.5"), MinorOnly: true},
		{Release: MustParse("18.8"), MinorOnly: true},
		{Release: MustParse("18.11"), MinorOnly: true},
	},
}
