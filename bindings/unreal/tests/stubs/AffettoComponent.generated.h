// Stand-ins for the Unreal Engine API used by AffettoComponent, for a compile check only; signatures follow UE 5.x
// (5.3/5.4). Never put these headers in a game: they declare, they do not implement.
//
// AffettoComponent.generated.h: in a real build UnrealHeaderTool writes it from AffettoComponent.h (the
// reflection code of FAffettoStatus, UAffettoComponent and the delegates). The stand-in markup macros need
// nothing from it.

#pragma once
